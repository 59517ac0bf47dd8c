"""Which projects a user may see: supervisors all, agents the projects they are members of."""

from postdesk.core.errors import NotFound
from postdesk.projects.models import Project


def projects_visible_to(user):
    if user.is_supervisor:
        return Project.objects.all()
    return Project.objects.filter(projectmember__user=user)


def get_project_for(user, key: str) -> Project:
    project = projects_visible_to(user).filter(key=key).first()
    if project is None:
        raise NotFound(f"no project {key!r}", field="project")
    return project
