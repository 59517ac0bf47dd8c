from django.shortcuts import render

from postdesk.accounts.access import agent_required


@agent_required
def inbox(request):
    return render(request, "emails/inbox.html", {})
