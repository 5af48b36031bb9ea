"""Auth API: registration rules, neutral messages, tokens (hashed, per login, revocable, expiring),
throttles that trust only configured proxies and hold without Redis, the admin login throttle."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.test.utils import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services import IDENTITY_UNAVAILABLE, digest_of

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
PASSWORD = "correct-horse-9"


def register(api: APIClient, username: str, email: str = "", password: str = PASSWORD) -> Any:
    return api.post(
        "/api/auth/register",
        {"username": username, "email": email, "password": password},
        format="json",
    )


def login(api: APIClient, username: str, password: str = PASSWORD, **extra: Any) -> Any:
    return api.post(
        "/api/auth/login", {"username": username, "password": password}, format="json", **extra
    )


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.mark.parametrize("password", ["        ", "aaaaaaaa", "abababab", "123", "12345678901"])
def test_register_refuses_weak_passwords(api: APIClient, password: str) -> None:
    response = register(api, "alice", password=password)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == "password"
    assert not get_user_model().objects.filter(username="alice").exists()


def test_taken_username_and_taken_email_get_the_same_neutral_answer(api: APIClient) -> None:
    assert register(api, "alice", "alice@example.com").status_code == 201
    by_name = register(api, "ALICE", "new@example.com")
    by_email = register(api, "someone", "Alice@EXAMPLE.com")
    assert by_name.status_code == by_email.status_code == 400
    assert by_name.json() == by_email.json()
    assert by_name.json()["detail"] == IDENTITY_UNAVAILABLE and "field" not in by_name.json()


def test_email_is_unique_case_insensitively_in_the_database(api: APIClient) -> None:
    User = get_user_model()
    User.objects.create_user("a1", email="Victim@Example.com", password=PASSWORD)
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user("a2", email="victim@example.COM", password=PASSWORD)
    # Blank e-mails are not addresses: any number of accounts may have none.
    User.objects.create_user("b1", password=PASSWORD)
    User.objects.create_user("b2", password=PASSWORD)


def test_login_by_username_or_email_each_login_its_own_token(api: APIClient) -> None:
    created = register(api, "alice", "alice@example.com")
    first = login(api, "alice")
    second = login(api, "ALICE@example.com")
    assert first.status_code == second.status_code == 200
    keys = {created.json()["token"], first.json()["token"], second.json()["token"]}
    assert len(keys) == 3
    # Only digests are stored: the table grants nothing to whoever reads it.
    stored = set(ApiToken.objects.values_list("digest", flat=True))
    assert stored == {digest_of(key) for key in keys} and not stored & keys


def test_wrong_password_and_unknown_user_answer_alike(api: APIClient) -> None:
    register(api, "alice")
    wrong = login(api, "alice", "not-the-password")
    unknown = login(api, "nobody", "not-the-password")
    assert wrong.status_code == unknown.status_code == 400
    assert wrong.json() == unknown.json()


def test_token_auth_is_one_query(api: APIClient, django_assert_num_queries: Any) -> None:
    key = register(api, "alice").json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    with django_assert_num_queries(1):  # token + user, one join (digest is unique)
        assert api.get("/api/auth/me").json()["username"] == "alice"


def test_logout_revokes_that_token_only_and_logout_all_every_one(api: APIClient) -> None:
    register(api, "alice")
    phone, laptop, tablet = (login(api, "alice").json()["token"] for _ in range(3))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {phone}")
    assert client.post("/api/auth/logout").status_code == 204
    assert client.get("/api/auth/me").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {laptop}")
    assert client.get("/api/auth/me").status_code == 200
    assert client.post("/api/auth/logout-all").status_code == 204
    for key in (laptop, tablet):
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        assert client.get("/api/auth/me").status_code == 401


def test_a_password_change_revokes_every_token(api: APIClient) -> None:
    old = register(api, "alice").json()["token"]
    other = login(api, "alice").json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {old}")
    wrong = api.post(
        "/api/auth/password", {"old_password": "nope", "new_password": "n3w-pass-word"},
        format="json",
    )  # fmt: skip
    assert wrong.status_code == 400 and wrong.json()["field"] == "old_password"
    changed = api.post(
        "/api/auth/password", {"old_password": PASSWORD, "new_password": "n3w-pass-word"},
        format="json",
    )  # fmt: skip
    assert changed.status_code == 200, changed.content
    for key in (old, other):
        api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        assert api.get("/api/auth/me").status_code == 401
    api.credentials(HTTP_AUTHORIZATION=f"Token {changed.json()['token']}")
    assert api.get("/api/auth/me").status_code == 200
    # Any other way of changing it (admin, changepassword) goes through set_password + save.
    user = get_user_model().objects.get(username="alice")
    user.set_password("an0ther-pass-word")
    user.save()
    assert api.get("/api/auth/me").status_code == 401


@override_settings(API_TOKEN_SLIDING=False, API_TOKEN_TTL_HOURS=1)
def test_a_fixed_expiry_ends_the_token(api: APIClient) -> None:
    key = register(api, "alice").json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/auth/me").status_code == 200
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = api.get("/api/auth/me")
    assert response.status_code == 401 and "expired" in response.json()["detail"]
    assert not ApiToken.objects.exists()  # an expired token is deleted on sight


@override_settings(API_TOKEN_SLIDING=True, API_TOKEN_TTL_HOURS=10)
def test_a_sliding_expiry_moves_with_use_at_most_once_per_interval(
    api: APIClient, django_assert_num_queries: Any
) -> None:
    key = register(api, "alice").json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    with django_assert_num_queries(1):  # fresh token: no write
        api.get("/api/auth/me")
    ApiToken.objects.update(expires_at=timezone.now() + timedelta(hours=2))
    with django_assert_num_queries(2):  # token + user, then the one UPDATE of its expiry
        assert api.get("/api/auth/me").status_code == 200
    left = ApiToken.objects.get().expires_at - timezone.now()
    assert timedelta(hours=9, minutes=59) < left <= timedelta(hours=10)


@override_settings(API_TOKENS_PER_USER=3)
def test_a_users_tokens_are_bounded(api: APIClient) -> None:
    register(api, "alice")
    keys = [login(api, "alice").json()["token"] for _ in range(5)]
    assert ApiToken.objects.count() == 3
    api.credentials(HTTP_AUTHORIZATION=f"Token {keys[0]}")
    assert api.get("/api/auth/me").status_code == 401  # the oldest went first
    api.credentials(HTTP_AUTHORIZATION=f"Token {keys[-1]}")
    assert api.get("/api/auth/me").status_code == 200


@pytest.mark.parametrize("header", ["Token", "Token a b", "Token " + "x" * 500, "Token \xe9\xe9"])
def test_malformed_token_headers_are_401(api: APIClient, header: str) -> None:
    api.credentials(HTTP_AUTHORIZATION=header)
    response = api.get("/api/auth/me")
    assert response.status_code == 401 and response.json()["code"]


# --- Throttles ----------------------------------------------------------------------------------


@pytest.mark.redis
@override_settings(AUTH_THROTTLE_RATE="5/minute", TRUSTED_PROXIES=0)
def test_rotating_x_forwarded_for_gives_no_new_attempts(api: APIClient) -> None:
    register(api, "alice")
    codes = [
        login(api, "alice", "wrong", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").status_code
        for i in range(8)
    ]
    assert codes == [400] * 5 + [429] * 3
    blocked = login(api, "alice", HTTP_X_FORWARDED_FOR="198.51.100.200")
    assert blocked.status_code == 429 and int(blocked["Retry-After"]) >= 1
    assert blocked.json()["code"] == "throttled"


@pytest.mark.redis
@override_settings(AUTH_THROTTLE_RATE="3/minute", TRUSTED_PROXIES=1)
def test_behind_one_trusted_proxy_the_client_is_its_right_most_entry(api: APIClient) -> None:
    # The client may prepend anything; our proxy appends the address it saw (the last entry).
    codes = [
        login(api, "x", "wrong", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}, 203.0.113.7").status_code
        for i in range(4)
    ]
    assert codes == [400, 400, 400, 429]
    other = login(api, "x", "wrong", HTTP_X_FORWARDED_FOR="203.0.113.8")
    assert other.status_code == 400  # another client behind the same proxy has its own budget


@pytest.mark.redis
@override_settings(AUTH_THROTTLE_RATE="4/minute")
def test_register_is_throttled_too(api: APIClient) -> None:
    codes = [register(api, f"user{i}", password="x").status_code for i in range(6)]
    assert codes == [400] * 4 + [429] * 2


@override_settings(AUTH_THROTTLE_RATE="4/minute")
def test_login_fails_closed_when_redis_is_down(api: APIClient) -> None:
    dead = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
    with override_settings(CACHES=dead):
        codes = [login(api, "alice", "wrong").status_code for _ in range(6)]
    assert codes == [400] * 4 + [429] * 2  # counted in process memory meanwhile


@pytest.mark.redis
@override_settings(AUTH_THROTTLE_RATE="3/minute")
def test_the_admin_login_is_throttled(api: APIClient) -> None:
    get_user_model().objects.create_user("boss", password=PASSWORD, is_staff=True)
    client = Client()
    codes = [
        client.post("/admin/login/", {"username": "boss", "password": "guess"}).status_code
        for _ in range(5)
    ]
    assert codes == [200, 200, 200, 429, 429]  # 200: the form again, with its error
    right = client.post("/admin/login/", {"username": "boss", "password": PASSWORD})
    assert right.status_code == 429  # even the right password waits for the window
    # The admin and the API share one budget of guesses per client.
    assert login(api, "boss").status_code == 429


# --- Silk ---------------------------------------------------------------------------------------


@override_settings(SILKY_INTERCEPT_PERCENT=100)
def test_silk_never_records_auth_endpoints_or_authorization_headers(api: APIClient) -> None:
    from silk.models import Request as SilkRequest

    key = register(api, "alice").json()["token"]
    login(api, "alice")
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    api.get("/api/bots/")
    paths = list(SilkRequest.objects.values_list("path", flat=True))
    assert "/api/bots/" in paths
    assert not [path for path in paths if path.startswith("/api/auth/")]
    recorded = SilkRequest.objects.get(path="/api/bots/")
    assert key not in recorded.encoded_headers and key not in (recorded.raw_body or "")


@pytest.mark.redis
@override_settings(AUTH_THROTTLE_RATE="100/minute", AUTH_ACCOUNT_FAILURE_RATE="4/hour")
def test_failed_logins_of_one_account_are_limited_across_every_address(api: APIClient) -> None:
    register(api, "alice")
    # Four guesses from four addresses (each far under its own per-address budget).
    codes = [
        login(api, "alice", "wrong", REMOTE_ADDR=f"198.51.100.{i}").status_code for i in range(4)
    ]
    assert codes == [400] * 4
    # Now every login of that name waits, from anywhere, the right password included.
    blocked = login(api, "ALICE", REMOTE_ADDR="203.0.113.9")  # names are case-folded
    assert blocked.status_code == 429 and blocked.json()["code"] == "throttled"
    assert int(blocked["Retry-After"]) >= 1
    client = Client(REMOTE_ADDR="203.0.113.10")
    page = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert page.status_code == 429 and "_auth_user_id" not in client.session
    get_user_model().objects.filter(username="alice").update(is_staff=True)
    admin_page = client.post("/admin/login/", {"username": "alice", "password": PASSWORD})
    assert admin_page.status_code == 429
    # Other accounts are untouched, and an unknown name is limited alike (nothing tells who
    # is registered).
    register(api, "bob")
    assert login(api, "bob", REMOTE_ADDR="198.51.100.1").status_code == 200
    unknown = [login(api, "nobody", "x", REMOTE_ADDR="198.51.100.2").status_code for _ in range(5)]
    assert unknown == [400] * 4 + [429]


@pytest.mark.redis
@override_settings(AUTH_ACCOUNT_FAILURE_RATE="4/hour")
def test_a_concurrent_burst_of_guesses_cannot_pass_the_account_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """16 guesses at one name at once: 4 (the limit) get their password checked, 12 are refused.
    The password check is held until every thread has been let through or refused, so the old
    order (check the count, then count the failure) let all 16 through, every time."""
    from django.contrib.auth.backends import ModelBackend
    from django.core.exceptions import PermissionDenied

    from accounts.backends import ThrottledModelBackend

    threads, decided = 16, threading.Condition()
    checked: list[int] = []
    refused: list[int] = []
    real = ModelBackend.authenticate

    def held(self: Any, request: Any, username: Any = None, password: Any = None, **kw: Any) -> Any:
        with decided:
            checked.append(1)
            decided.notify_all()
            assert decided.wait_for(lambda: len(checked) + len(refused) == threads, timeout=60)
        return real(self, request, username=username, password=password, **kw)

    monkeypatch.setattr(ModelBackend, "authenticate", held)
    barrier = threading.Barrier(threads)

    def guess() -> None:
        barrier.wait()
        try:
            ThrottledModelBackend().authenticate(None, username="burst", password="wrong")
        except PermissionDenied:
            with decided:
                refused.append(1)
                decided.notify_all()
        finally:
            connection.close()

    workers = [threading.Thread(target=guess) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert (len(checked), len(refused)) == (4, 12)


@pytest.mark.redis
@pytest.mark.parametrize("store", ["redis", "redis down"])
@override_settings(AUTH_THROTTLE_RATE="100/minute", AUTH_ACCOUNT_FAILURE_RATE="4/hour")
def test_right_passwords_do_not_use_up_the_accounts_failure_budget(
    api: APIClient, store: str
) -> None:
    """Every attempt is counted first; a right password gives its count back (in Redis, or in
    process memory while Redis is down)."""
    register(api, "alice")
    dead = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
    with override_settings(CACHES=dead) if store == "redis down" else override_settings():
        assert [login(api, "alice").status_code for _ in range(6)] == [200] * 6
        codes = [login(api, "alice", "wrong").status_code for _ in range(5)]
    assert codes == [400] * 4 + [429]
