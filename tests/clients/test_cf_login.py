"""`cf login` as `cloudfoundry-client` does it, for real: the gateway is its
own UAA ([auth.login] with the default config's development user
admin/admin), the client fetches its token with the `cf` client's password
grant, and refreshes it itself when the Cloud Controller API answers
CF-InvalidAuthToken. No token is set by hand."""

import uuid

import pytest
from cloudfoundry_client.client import CloudFoundryClient
from oauth2_client.credentials_manager import OAuthError


def test_init_with_user_credentials_logs_in_and_writes(embedded):
    client = CloudFoundryClient(embedded.url)
    client.init_with_user_credentials("admin", "admin")
    name = f"login-{uuid.uuid4().hex[:8]}"
    created = client.v2.security_groups._create({"name": name, "rules": []})
    assert created["entity"]["name"] == name
    assert [g["entity"]["name"] for g in client.v2.security_groups.list(name=name)] == [name]


def test_a_rejected_token_is_refreshed_by_the_client(embedded):
    client = CloudFoundryClient(embedded.url)
    client.init_with_user_credentials("admin", "admin")
    # The API answers 401 CF-InvalidAuthToken; the client refreshes with its
    # refresh token (grant_type=refresh_token) and retries once.
    client._access_token = "no-longer-valid"
    assert isinstance(list(client.v2.security_groups.list()), list)
    assert client._access_token != "no-longer-valid"


def test_wrong_password_is_uaas_bad_credentials(embedded):
    client = CloudFoundryClient(embedded.url)
    with pytest.raises(OAuthError) as failed:
        client.init_with_user_credentials("admin", "not-the-password")
    assert failed.value.status_code == 401
    assert failed.value.error == "unauthorized"
    assert failed.value.error_description == "Bad credentials"
