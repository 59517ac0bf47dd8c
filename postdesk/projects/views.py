from django.shortcuts import render

from postdesk.accounts.access import supervisor_required
from postdesk.projects.models import Project


@supervisor_required
def supervisor_home(request):
    return render(request, "projects/supervisor_home.html", {"projects": Project.objects.all()})
