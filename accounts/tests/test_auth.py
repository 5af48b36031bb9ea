"""accounts.auth.token_with_user: the precompiled lookup answers what the ORM query answers."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

from accounts.auth import token_with_user
from accounts.models import ApiToken
from accounts.services import digest_of, token_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_same_token_and_user_as_the_orm_in_one_query(django_assert_num_queries: Any) -> None:
    user = get_user_model().objects.create_user(
        "tok", email="tok@example.com", password="pw-for-tests-123", first_name="T", is_staff=True
    )
    token_create(user=user)  # another token of the same user: the digest picks one
    issued = token_create(user=user)
    digest = digest_of(issued.key)
    with django_assert_num_queries(1):
        token = token_with_user(digest)
    expected = ApiToken.objects.select_related("user").get(digest=digest)
    fields = [f.attname for f in ApiToken._meta.concrete_fields]
    assert [getattr(token, f) for f in fields] == [getattr(expected, f) for f in fields]
    user_fields = [f.attname for f in get_user_model()._meta.concrete_fields]
    assert [getattr(token.user, f) for f in user_fields] == [
        getattr(expected.user, f) for f in user_fields
    ]
    assert token.expires_at.tzinfo is not None  # aware, as the ORM gives it
    assert token._state.db == "default" and not token._state.adding


def test_unknown_digest_is_none() -> None:
    assert token_with_user(digest_of("no such key")) is None
