import pytest

from ccweb.accounts.models import InviteCode

CHANGELISTS = [
    "/admin/accounts/user/",
    "/admin/accounts/user/?is_active__exact=1&q=ali",
    "/admin/accounts/invitecode/",
    "/admin/accounts/invitecode/?availability=available",
    "/admin/accounts/invitecode/?availability=used_up",
    "/admin/accounts/invitecode/?availability=expired&q=58",
]


@pytest.mark.parametrize("url", CHANGELISTS)
def test_it_lists_users_and_codes_with_filters(admin_client, alice, url):
    response = admin_client.get(url)

    assert response.status_code == 200


def test_it_shows_a_users_change_page(admin_client, alice):
    response = admin_client.get(f"/admin/accounts/user/{alice.pk}/change/")

    assert response.status_code == 200


def test_it_filters_used_up_codes(admin_client, make_invite):
    make_invite(code="FULL", max_uses=1, use_count=1)
    make_invite(code="OPEN", max_uses=5, use_count=1)

    response = admin_client.get("/admin/accounts/invitecode/?availability=used_up")

    assert list(response.context["cl"].queryset) == [
        InviteCode.objects.get(code="FULL")
    ]


def test_it_deactivates_codes_in_bulk(admin_client, make_invite):
    codes = [make_invite(), make_invite()]

    admin_client.post(
        "/admin/accounts/invitecode/",
        {"action": "deactivate", "_selected_action": [code.pk for code in codes]},
    )

    assert not InviteCode.objects.filter(pk__in=[c.pk for c in codes], is_active=True)


def edit_form(invite: InviteCode, **changes) -> dict:
    form = {
        "code": invite.code,
        "is_active": "on",
        "max_uses": invite.max_uses or "",
        "expires_at_0": "",
        "expires_at_1": "",
        "note": invite.note,
    }
    return {**form, **changes}


def test_it_keeps_the_use_count_read_only(admin_client, make_invite):
    invite = make_invite(max_uses=10, use_count=4)

    admin_client.post(
        f"/admin/accounts/invitecode/{invite.pk}/change/",
        edit_form(invite, use_count="0", note="edited"),
    )

    invite.refresh_from_db()
    assert (invite.note, invite.use_count) == ("edited", 4)


def test_it_refuses_a_limit_below_the_uses_so_far(admin_client, make_invite):
    invite = make_invite(max_uses=10, use_count=4)

    response = admin_client.post(
        f"/admin/accounts/invitecode/{invite.pk}/change/",
        edit_form(invite, max_uses="3"),
    )

    assert "the limit cannot be lower" in response.content.decode()


@pytest.mark.parametrize("code", ["has space", "a/b"])
def test_it_refuses_codes_that_do_not_fit_in_a_url(admin_client, db, code):
    response = admin_client.post(
        "/admin/accounts/invitecode/add/", edit_form(InviteCode(code=code))
    )

    assert "Use letters, digits" in response.content.decode()


def user_form(user, **changes) -> dict:
    form = {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_active": "on",
        "nickname": user.nickname,
    }
    return {**form, **changes}


def test_it_refuses_a_username_taken_in_another_case(admin_client, alice, bob):
    response = admin_client.post(
        f"/admin/accounts/user/{bob.pk}/change/", user_form(bob, username="ALICE")
    )

    assert "A user with that username already exists." in response.content.decode()


def test_it_renames_a_user(admin_client, bob):
    admin_client.post(
        f"/admin/accounts/user/{bob.pk}/change/", user_form(bob, username="Bobby")
    )

    bob.refresh_from_db()
    assert bob.username == "Bobby"
