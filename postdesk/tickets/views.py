from django.shortcuts import render

from postdesk.accounts.access import agent_required


@agent_required
def ticket_list(request):
    return render(request, "tickets/list.html", {})
