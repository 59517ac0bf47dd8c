from django.shortcuts import render

from postdesk.accounts.access import agent_required


@agent_required
def inbox(request):
    return render(request, "emails/inbox.html", {})


@agent_required
def attachment_download(request, email_id: int, attachment_id: int):
    """Attachments are only ever served as downloads, never rendered from our origin."""
    from django.http import Http404, HttpResponse

    from postdesk.core.errors import NotFound
    from postdesk.emails.access import get_email_for

    try:
        email = get_email_for(request.user, email_id)
    except NotFound:
        raise Http404("no such email")
    attachment = email.attachments.filter(pk=attachment_id).first()
    if attachment is None:
        raise Http404("no such attachment")
    response = HttpResponse(bytes(attachment.data), content_type="application/octet-stream")
    from django.utils.http import content_disposition_header

    response["Content-Disposition"] = content_disposition_header(True, attachment.filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
