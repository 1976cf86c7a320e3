"""Invite codes under concurrent signups (real PostgreSQL, real threads)."""

import pytest
from django.contrib.auth import get_user_model

from ccweb.accounts import services

User = get_user_model()


@pytest.mark.django_db(transaction=True)
def test_it_never_lets_concurrent_signups_pass_max_uses(
    make_invite, signup, run_concurrently
):
    invite = make_invite(max_uses=10)

    responses = run_concurrently(
        [lambda n=n: signup(f"racer{n}", invite.code) for n in range(50)]
    )

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] * 10 + [400] * 40


@pytest.mark.django_db(transaction=True)
def test_it_counts_exactly_the_accounts_it_created(
    make_invite, signup, run_concurrently
):
    invite = make_invite(max_uses=10, use_count=3)

    run_concurrently([lambda n=n: signup(f"racer{n}", invite.code) for n in range(20)])

    invite.refresh_from_db()
    assert (invite.use_count, User.objects.filter(invite_code=invite).count()) == (
        10,
        7,
    )


@pytest.mark.django_db(transaction=True)
def test_it_answers_the_losers_with_a_clear_used_up_error(
    make_invite, signup, run_concurrently
):
    invite = make_invite(max_uses=1)

    responses = run_concurrently(
        [lambda n=n: signup(f"racer{n}", invite.code) for n in range(5)]
    )

    refusals = {
        tuple(r.json()["errors"]["invite_code"])
        for r in responses
        if r.status_code == 400
    }
    assert refusals == {("This invite code has no uses left.",)}


@pytest.mark.django_db(transaction=True)
def test_it_gives_one_username_to_one_of_two_racing_signups(
    make_invite, signup, run_concurrently
):
    invite = make_invite()

    responses = run_concurrently(
        [lambda name=name: signup(name, invite.code) for name in ("Racer", "racer")]
    )

    assert sorted(r.status_code for r in responses) == [201, 400]


@pytest.mark.django_db(transaction=True)
def test_it_gives_back_the_use_of_a_signup_that_lost_its_username_race(
    make_invite, signup, run_concurrently
):
    invite = make_invite()

    run_concurrently(
        [lambda name=name: signup(name, invite.code) for name in ("Racer", "racer")]
    )

    invite.refresh_from_db()
    assert invite.use_count == 1


def test_it_counts_uses_of_an_unlimited_code(make_invite):
    invite = make_invite(max_uses=None)

    for _ in range(3):
        services.redeem_invite_code(invite.code)

    invite.refresh_from_db()
    assert invite.use_count == 3


@pytest.mark.parametrize("code", ["", "x" * 33, "nul\x00"])
def test_it_calls_impossible_codes_unknown_without_a_query(
    db, django_assert_num_queries, code
):
    with django_assert_num_queries(0):
        problem = services.invite_code_problem(code)

    assert problem == "unknown"
