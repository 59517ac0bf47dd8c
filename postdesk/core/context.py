def navigation(request):
    user = getattr(request, "user", None)
    is_supervisor = bool(user and user.is_authenticated and user.is_supervisor)
    return {"is_supervisor": is_supervisor}
