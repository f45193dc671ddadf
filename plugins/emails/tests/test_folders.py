"""Email folders (plugins/emails/folders.py): each user's standard folders and the group
folders, made once however many times they are asked for, and nobody else's folder opened."""
import pytest

from core.kernel.users import create_user
from plugins.emails import folders


def test_standard_folders_are_made_once_and_each_user_sees_their_own(site, admin):
    ann = create_user(site, "ann", "correct horse battery")
    mine = folders.visible(site, admin)
    again = folders.visible(site, admin)
    assert [(f.kind, f.name) for f in mine] == [
        ("inbox", "Inbox"), ("sent", "Sent"), ("drafts", "Drafts"), ("trash", "Trash"),
        ("group", "Group Inbox"), ("group", "Customer Support"), ("group", "Campaign Responses")]
    assert [f.id for f in again] == [f.id for f in mine]
    anns = folders.visible(site, ann)
    assert {f.id for f in anns if f.is_group} == {f.id for f in mine if f.is_group}
    admin_inbox = mine[0].id
    assert folders.find(site, admin, admin_inbox) == mine[0]
    assert folders.find(site, ann, admin_inbox) is None  # someone else's
    assert folders.find(site, ann, mine[-1].id) == mine[-1]  # a group folder


def test_folders_of_ones_own_and_group_folders_are_added_by_name(site, admin):
    projects = folders.create(site, admin, "  Projects  ")
    assert (projects.name, projects.kind, projects.owner_user_id) == ("Projects", "custom",
                                                                     admin.id)
    with pytest.raises(ValueError, match="already a folder called 'projects'"):
        folders.create(site, admin, "projects")
    with pytest.raises(ValueError, match="needs a name"):
        folders.create(site, admin, "   ")
    sales = folders.create(site, admin, "Sales leads", group=True)
    assert sales.is_group and sales.kind == "group"
    assert folders.visible(site, admin)[-1] == sales
    assert sales.label(lambda s: s.upper()) == "Sales leads"  # not a standard one
    inbox = folders.visible(site, admin)[0]
    assert inbox.label(lambda s: s.upper()) == "INBOX"
