"""Site visits in the admin are read-only."""

import pytest
from django.test import Client

from visits.models import SiteVisit

CHANGELIST = "/admin/visits/sitevisit/"


@pytest.fixture
def admin_client_(make_user):
    client = Client()
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


def test_it_lists_visits_with_filters(admin_client_, alice):
    SiteVisit.objects.create(user=alice, source="home_banner")

    response = admin_client_.get(CHANGELIST, {"source": "home_banner"})

    assert response.status_code == 200
    assert b"home_banner" in response.content


def test_it_offers_no_add_page(admin_client_):
    response = admin_client_.get(f"{CHANGELIST}add/")

    assert response.status_code == 403


def test_it_refuses_changes(admin_client_, alice):
    visit = SiteVisit.objects.create(user=alice, source="menu")

    admin_client_.post(f"{CHANGELIST}{visit.pk}/change/", {"source": "changed"})

    visit.refresh_from_db()
    assert visit.source == "menu"


@pytest.mark.parametrize("query", ["alice", "home", "abc", "12"])
def test_it_searches_without_error(admin_client_, alice, query):
    SiteVisit.objects.create(user=alice, source="home_banner")

    response = admin_client_.get(CHANGELIST, {"q": query})

    assert response.status_code == 200
