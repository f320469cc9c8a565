"""JWT bearer tokens from an OIDC issuer, against a local issuer with its own keys (``oidc_issuer``): what is
accepted, every reason for a 401, the users they act as, the scopes they grant, and how the keys are kept and read
again (rotation, the refetch limit, the issuer down)."""

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from django.core.cache import cache
from django.test import override_settings

from apps.accounts import oidc
from apps.accounts.exceptions import IssuerUnavailableError
from apps.accounts.models import User
from apps.accounts.services import api_key_create
from tests.factories import FlowRequestFactory, UserFactory, personal_organization
from tests.fakes.oidc_issuer import AUDIENCE

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock(monkeypatch):
    """Neena's view of the time for the keys (what is current, the refetch windows), moved by the test."""
    now = [time.time()]
    monkeypatch.setattr(oidc, "_now", lambda: now[0])
    return now


ALGORITHM_REFUSED = "The token's signing algorithm is not accepted: only RS256 and ES256 are."


def refused(response, reason):
    assert response.status_code == 401, response.content
    assert response.json() == {"detail": reason, "code": "invalid_token"}
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="neena",error="invalid_token"')


# --- Accepted tokens and the users they act as ---------------------------------------------------------------------


@pytest.mark.parametrize("kid", ["rsa-1", "ec-1"])
def test_a_token_signed_by_the_issuer_provisions_its_user(oidc_issuer, jwt_client, kid):
    response = jwt_client(oidc_issuer.token(kid=kid)).get("/api/v1/users/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["email"], body["full_name"], body["auth0_id"]) == ("ann@example.com", "Ann Example", "auth0|ann")
    assert body["permissions"] == ["read", "write", "approve"]
    assert [(org["role"], org["is_personal"]) for org in body["organizations"]] == [("owner", True)]
    assert User.objects.get(email="ann@example.com").auth0_id == "auth0|ann"


def test_the_keys_are_read_once_and_kept(oidc_issuer, jwt_client):
    for _ in range(3):
        assert jwt_client(oidc_issuer.token()).get("/api/v1/users/").status_code == 200

    assert oidc_issuer.state.paths == ["/.well-known/openid-configuration", "/.well-known/jwks.json"]
    assert User.objects.filter(email="ann@example.com").count() == 1


def test_an_existing_user_is_found_by_email_and_linked(oidc_issuer, jwt_client):
    ann = UserFactory(email="Ann@Example.com", full_name="Ann")

    response = jwt_client(oidc_issuer.token()).get("/api/v1/users/")

    assert response.json()["id"] == str(ann.id)
    ann.refresh_from_db()
    assert ann.auth0_id == "auth0|ann"
    assert ann.full_name == "Ann"
    assert User.objects.count() == 1


def test_a_user_linked_to_another_subject_is_refused(oidc_issuer, jwt_client):
    UserFactory(email="ann@example.com", auth0_id="google-oauth2|ann")

    response = jwt_client(oidc_issuer.token()).get("/api/v1/users/")

    refused(
        response,
        "This email belongs to a Neena user linked to another identity of the issuer (auth0_id); an administrator "
        "can clear the user's auth0_id to link this one.",
    )


def test_the_subject_alone_never_finds_a_user(oidc_issuer, jwt_client, owner):
    # Anyone may write an auth0_id into their own account (create_if_not_exists): it must not make them the
    # identity's user. A token for another email with that subject is its own user.
    owner.auth0_id = "auth0|ann"
    owner.save()

    response = jwt_client(oidc_issuer.token()).get("/api/v1/users/")

    assert response.status_code == 200
    assert response.json()["email"] == "ann@example.com"
    assert response.json()["id"] != str(owner.id)


def test_a_deactivated_user_is_refused(oidc_issuer, jwt_client):
    ann = UserFactory(email="ann@example.com", auth0_id="auth0|ann")
    assert jwt_client(oidc_issuer.token()).get("/api/v1/users/").status_code == 200
    User.objects.filter(pk=ann.pk).update(is_active=False)

    refused(jwt_client(oidc_issuer.token()).get("/api/v1/users/"), "The user is deactivated.")


def test_a_namespaced_email_claim(oidc_issuer, jwt_client):
    claim = "https://neena.example/email"
    token = oidc_issuer.token(email=None, **{claim: "bob@example.com"})

    with override_settings(NEENA_OIDC_EMAIL_CLAIM=claim):
        response = jwt_client(token).get("/api/v1/users/")

    assert response.status_code == 200
    assert response.json()["email"] == "bob@example.com"


def test_a_token_without_the_email_claim_is_refused(oidc_issuer, jwt_client):
    refused(
        jwt_client(oidc_issuer.token(email=None)).get("/api/v1/users/"),
        "The token carries no email (the 'email' claim), which Neena finds its user by.",
    )


@pytest.mark.parametrize("email", ["not-an-email", "a" * 250 + "@example.com", ["ann@example.com"]])
def test_an_email_claim_that_is_not_an_address_is_refused(oidc_issuer, jwt_client, email):
    response = jwt_client(oidc_issuer.token(email=email)).get("/api/v1/users/")

    assert response.status_code == 401
    assert not User.objects.exists()


# Some issuers send the claim as a string ("false"): that is not a verified address either.
@pytest.mark.parametrize("email_verified", [False, "false", "False"])
def test_an_email_the_issuer_has_not_verified_is_refused(oidc_issuer, jwt_client, email_verified):
    UserFactory(email="ann@example.com")

    refused(
        jwt_client(oidc_issuer.token(email_verified=email_verified)).get("/api/v1/users/"),
        "The issuer has not verified the token's email (email_verified is false).",
    )
    assert User.objects.get(email="ann@example.com").auth0_id == ""


def test_create_if_not_exists_with_a_jwt_answers_the_provisioned_user(oidc_issuer, jwt_client):
    response = jwt_client(oidc_issuer.token()).post(
        "/api/v1/users/create_if_not_exists",
        {"email": "ann@example.com", "full_name": "Ann", "auth0_id": "auth0|ann"},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["auth0_id"] == "auth0|ann"
    assert User.objects.count() == 1


def test_a_jwt_user_sees_only_their_organizations(oidc_issuer, jwt_client, outsider):
    outsiders_request = FlowRequestFactory(organization=personal_organization(outsider))
    client = jwt_client(oidc_issuer.token())

    response = client.get(f"/api/v1/flow_requests/?id={outsiders_request.id}")

    assert response.status_code == 404
    assert client.get("/api/v1/flow_requests/all").json() == []


# --- Scopes -----------------------------------------------------------------------------------------------------


def test_auth0_permissions_win_over_scope_and_unknown_names_grant_nothing(oidc_issuer, jwt_client):
    token = oidc_issuer.token(scope="openid read write approve", permissions=["approve", "read", "read:flows"])

    response = jwt_client(token).get("/api/v1/users/")

    assert response.json()["permissions"] == ["read", "approve"]


def test_scope_grants_what_it_names(oidc_issuer, jwt_client):
    client = jwt_client(oidc_issuer.token(scope="openid profile read"))

    assert client.get("/api/v1/users/").json()["permissions"] == ["read"]
    response = client.post("/api/v1/flow_requests/", {"request_instructions": "x"}, format="json")
    assert response.status_code == 403
    assert response.json()["detail"] == "The token lacks the 'write' scope."


def test_a_token_granting_no_api_scope_reads_nothing(oidc_issuer, jwt_client):
    response = jwt_client(oidc_issuer.token(scope="openid profile")).get("/api/v1/flow_requests/all")

    assert response.status_code == 403


def test_write_scope_writes(oidc_issuer, jwt_client):
    response = jwt_client(oidc_issuer.token(scope="write")).post(
        "/api/v1/flow_requests/", {"request_instructions": "Summarise the ticket."}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["created_by_email"] == "ann@example.com"


# --- Refused tokens -----------------------------------------------------------------------------------------------


def test_a_wrong_signature_is_refused(oidc_issuer, jwt_client):
    # rsa-2's private key, under rsa-1's kid: the published rsa-1 key does not verify it.
    token = oidc_issuer.token(kid="rsa-1", signing_key=oidc_issuer.keys["rsa-2"].private_key)

    refused(jwt_client(token).get("/api/v1/users/"), "The token's signature does not verify.")


def test_a_tampered_payload_is_refused(oidc_issuer, jwt_client):
    header, _, signature = oidc_issuer.token().split(".")
    forged = jwt.utils.base64url_encode(b'{"iss":"x","sub":"auth0|admin","email":"admin@example.com"}').decode()

    response = jwt_client(f"{header}.{forged}.{signature}").get("/api/v1/users/")

    refused(response, "The token's signature does not verify.")


def test_a_key_the_issuer_does_not_publish_is_refused(oidc_issuer, jwt_client):
    refused(
        jwt_client(oidc_issuer.token(kid="rsa-2")).get("/api/v1/users/"),
        "The token is signed with a key the issuer does not publish.",
    )
    assert not User.objects.exists()


def test_an_expired_token_is_refused(oidc_issuer, jwt_client):
    token = oidc_issuer.token(exp=int(time.time()) - 31, iat=int(time.time()) - 600)

    refused(jwt_client(token).get("/api/v1/users/"), "The token has expired.")


def test_the_leeway_absorbs_a_little_clock_skew(oidc_issuer, jwt_client):
    skewed = oidc_issuer.token(exp=int(time.time()) - 20, iat=int(time.time()) + 20, nbf=int(time.time()) + 20)

    assert jwt_client(skewed).get("/api/v1/users/").status_code == 200


def test_a_token_not_valid_yet_is_refused(oidc_issuer, jwt_client):
    token = oidc_issuer.token(nbf=int(time.time()) + 120, exp=int(time.time()) + 600)

    refused(jwt_client(token).get("/api/v1/users/"), "The token is not valid yet (nbf or iat is in the future).")


def test_another_audience_is_refused(oidc_issuer, jwt_client):
    refused(
        jwt_client(oidc_issuer.token(aud="https://another-api.test")).get("/api/v1/users/"),
        "The token is not meant for this API (aud).",
    )


def test_an_audience_list_naming_this_api_is_accepted(oidc_issuer, jwt_client):
    token = oidc_issuer.token(aud=[AUDIENCE, f"{oidc_issuer.url}userinfo"])

    assert jwt_client(token).get("/api/v1/users/").status_code == 200


def test_another_issuer_is_refused(oidc_issuer, jwt_client):
    refused(
        jwt_client(oidc_issuer.token(iss="https://evil.example/")).get("/api/v1/users/"),
        "The token comes from another issuer (iss).",
    )


@pytest.mark.parametrize("claim", ["exp", "aud", "iss", "sub"])
def test_a_token_without_a_required_claim_is_refused(oidc_issuer, jwt_client, claim):
    response = jwt_client(oidc_issuer.token(**{claim: None})).get("/api/v1/users/")

    refused(response, f"The token lacks the '{claim}' claim.")


def test_alg_none_is_refused(oidc_issuer, jwt_client):
    token = jwt.encode(
        {"iss": oidc_issuer.url, "aud": AUDIENCE, "sub": "auth0|ann", "exp": int(time.time()) + 300},
        None,
        algorithm="none",
        headers={"kid": "rsa-1"},
    )
    assert token.endswith(".")

    refused(jwt_client(token).get("/api/v1/users/"), ALGORITHM_REFUSED)


def test_hs256_signed_with_the_public_key_is_refused(oidc_issuer, jwt_client):
    # The classic confusion: the issuer's public key, which anyone can read, used as an HMAC secret.
    public_pem = (
        oidc_issuer.keys["rsa-1"]
        .private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = jwt.utils.base64url_encode(b'{"alg":"HS256","kid":"rsa-1","typ":"JWT"}')
    claims = b'{"iss":"%s","aud":"%s","sub":"auth0|ann","email":"ann@example.com","exp":%d}' % (
        oidc_issuer.url.encode(),
        AUDIENCE.encode(),
        int(time.time()) + 300,
    )
    payload = jwt.utils.base64url_encode(claims)
    signature = jwt.algorithms.HMACAlgorithm(jwt.algorithms.HMACAlgorithm.SHA256).sign(
        header + b"." + payload, public_pem
    )
    token = b".".join([header, payload, jwt.utils.base64url_encode(signature)]).decode()

    refused(jwt_client(token).get("/api/v1/users/"), ALGORITHM_REFUSED)


def test_an_algorithm_other_than_its_keys_is_refused(oidc_issuer, jwt_client):
    # ES256 named in the header, with the kid of the RS256 key (signed by the EC key, so the signature is well-formed).
    token = oidc_issuer.token(kid="rsa-1", algorithm="ES256", signing_key=oidc_issuer.keys["ec-1"].private_key)

    refused(jwt_client(token).get("/api/v1/users/"), "The token's algorithm is not its signing key's.")


def test_a_token_naming_no_key_is_refused(oidc_issuer, jwt_client):
    token = jwt.encode(
        {"iss": oidc_issuer.url, "aud": AUDIENCE, "sub": "auth0|ann", "exp": int(time.time()) + 300},
        oidc_issuer.keys["rsa-1"].private_key,
        algorithm="RS256",
    )

    refused(jwt_client(token).get("/api/v1/users/"), "The token's header names no signing key (kid).")


@pytest.mark.parametrize("token", ["eyJhbGciOi.eyJzdWIi.c2ln", "a.b.c", "e30.e30.", "eyJ9.e30.abc"])
def test_malformed_jwts_are_401_never_500(oidc_issuer, jwt_client, token):
    response = jwt_client(token).get("/api/v1/users/")

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_without_an_issuer_a_jwt_is_refused_as_an_unknown_token(oidc_issuer, jwt_client):
    token = oidc_issuer.token()

    with override_settings(NEENA_OIDC_ISSUER=""):
        response = jwt_client(token).get("/api/v1/users/")

    refused(response, "The token is invalid or has expired.")
    assert oidc_issuer.state.paths == []


def test_neenas_own_tokens_still_work_with_an_issuer_configured(oidc_issuer, jwt_client, owner):
    response = jwt_client(api_key_create(user=owner, scopes=["read"])).get("/api/v1/users/")

    assert response.status_code == 200
    assert response.json()["email"] == owner.email
    assert oidc_issuer.state.paths == []


def test_the_api_key_header_carries_a_jwt_too(oidc_issuer, client):
    response = client.get("/api/v1/users/", HTTP_API_KEY=oidc_issuer.token())

    assert response.status_code == 200
    assert response.json()["email"] == "ann@example.com"


# --- The keys: rotation, the refetch limit, the issuer down -------------------------------------------------------


def test_a_new_key_is_accepted_after_reading_the_keys_again_and_a_withdrawn_one_is_refused(
    oidc_issuer, jwt_client, clock
):
    assert jwt_client(oidc_issuer.token(kid="rsa-1")).get("/api/v1/users/").status_code == 200
    oidc_issuer.publish("rsa-2")
    oidc_issuer.withdraw("rsa-1")
    clock[0] += 61  # past the refetch window of the first reading

    assert jwt_client(oidc_issuer.token(kid="rsa-2")).get("/api/v1/users/").status_code == 200
    assert oidc_issuer.jwks_requests() == 2
    refused(
        jwt_client(oidc_issuer.token(kid="rsa-1")).get("/api/v1/users/"),
        "The token is signed with a key the issuer does not publish.",
    )
    assert oidc_issuer.jwks_requests() == 2  # read moments ago: not again


def test_unknown_keys_read_the_issuer_at_most_once_per_window(oidc_issuer, jwt_client, clock):
    assert jwt_client(oidc_issuer.token()).get("/api/v1/users/").status_code == 200
    clock[0] += 61

    for _ in range(5):
        assert jwt_client(oidc_issuer.token(kid="rsa-2")).get("/api/v1/users/").status_code == 401
    assert oidc_issuer.jwks_requests() == 2

    oidc_issuer.publish("rsa-2")
    clock[0] += 61
    assert jwt_client(oidc_issuer.token(kid="rsa-2")).get("/api/v1/users/").status_code == 200
    assert oidc_issuer.jwks_requests() == 3


def test_the_window_holds_across_processes(oidc_issuer, jwt_client, clock):
    assert jwt_client(oidc_issuer.token()).get("/api/v1/users/").status_code == 200
    clock[0] += 61
    assert jwt_client(oidc_issuer.token(kid="rsa-2")).get("/api/v1/users/").status_code == 401
    oidc.key_cache_clear()  # another process: nothing in memory, the same Django cache

    assert jwt_client(oidc_issuer.token(kid="rsa-2")).get("/api/v1/users/").status_code == 401
    assert oidc_issuer.jwks_requests() == 2


def test_keys_another_process_read_are_used_without_reading_them_again(oidc_issuer, jwt_client):
    assert jwt_client(oidc_issuer.token()).get("/api/v1/users/").status_code == 200
    oidc.key_cache_clear()  # another process

    assert jwt_client(oidc_issuer.token(kid="ec-1")).get("/api/v1/users/").status_code == 200
    assert oidc_issuer.state.paths == ["/.well-known/openid-configuration", "/.well-known/jwks.json"]


def test_a_rotation_another_process_read_is_picked_up_from_the_shared_cache(oidc_issuer, jwt_client, clock):
    assert jwt_client(oidc_issuer.token(kid="rsa-1")).get("/api/v1/users/").status_code == 200
    oidc_issuer.publish("rsa-2")
    clock[0] += 61
    # Another process meets rsa-2 first and reads the keys again (its memory: empty).
    remembered = dict(oidc._key_sets)
    oidc.key_cache_clear()
    assert jwt_client(oidc_issuer.token(kid="rsa-2")).get("/api/v1/users/").status_code == 200
    # This process, still holding the old keys and with the window spent, finds the new ones in the cache.
    oidc._key_sets.update(remembered)

    assert jwt_client(oidc_issuer.token(kid="rsa-2")).get("/api/v1/users/").status_code == 200
    assert oidc_issuer.jwks_requests() == 2


def test_keys_past_their_time_are_read_again(oidc_issuer, jwt_client, clock):
    assert jwt_client(oidc_issuer.token()).get("/api/v1/users/").status_code == 200
    oidc_issuer.withdraw("rsa-1")
    clock[0] += 601  # NEENA_OIDC_JWKS_CACHE_SECONDS

    refused(
        jwt_client(oidc_issuer.token()).get("/api/v1/users/"),
        "The token is signed with a key the issuer does not publish.",
    )
    assert oidc_issuer.state.paths[-2:] == ["/.well-known/openid-configuration", "/.well-known/jwks.json"]


def test_an_unreachable_issuer_answers_503_and_is_not_asked_again_at_once(oidc_issuer, jwt_client, clock):
    oidc_issuer.state.status = 500

    for _ in range(3):
        response = jwt_client(oidc_issuer.token()).get("/api/v1/users/")
        assert response.status_code == 503
        assert response.json() == {
            "detail": "The token's issuer could not be reached to check its signature; try again shortly.",
            "code": "oidc_issuer_unavailable",
        }
    assert oidc_issuer.state.paths == ["/.well-known/openid-configuration"]

    oidc_issuer.state.status = None
    clock[0] += 61
    assert jwt_client(oidc_issuer.token()).get("/api/v1/users/").status_code == 200


def test_an_issuer_that_does_not_answer_at_all_is_503(oidc_issuer, jwt_client):
    with override_settings(NEENA_OIDC_JWKS_URL="http://127.0.0.1:9/jwks.json", NEENA_OIDC_TIMEOUT_SECONDS=0.5):
        response = jwt_client(oidc_issuer.token()).get("/api/v1/users/")

    assert response.status_code == 503
    assert response.json()["code"] == "oidc_issuer_unavailable"


def test_a_discovery_document_naming_another_issuer_is_not_used(oidc_issuer, jwt_client):
    oidc_issuer.state.discovery_issuer = "https://another-issuer.example/"

    assert jwt_client(oidc_issuer.token()).get("/api/v1/users/").status_code == 503
    assert oidc_issuer.jwks_requests() == 0


def test_a_configured_jwks_url_skips_discovery(oidc_issuer, jwt_client):
    with override_settings(NEENA_OIDC_JWKS_URL=oidc_issuer.jwks_url):
        assert jwt_client(oidc_issuer.token()).get("/api/v1/users/").status_code == 200

    assert oidc_issuer.state.paths == ["/.well-known/jwks.json"]


def test_unusable_keys_in_the_jwks_are_skipped(oidc_issuer, jwt_client):
    oidc_issuer.state.extra_jwks_entries = [
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {**oidc_issuer.keys["rsa-2"].public_jwk(), "use": "enc"},
        {**oidc_issuer.keys["ec-2"].public_jwk(), "kid": ""},
        {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
        {"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AA", "y": "AA"},
        "not a key",
    ]

    assert jwt_client(oidc_issuer.token()).get("/api/v1/users/").status_code == 200
    assert set(oidc._key_sets[oidc_issuer.jwks_url].keys) == {"rsa-1", "ec-1"}


def test_the_cache_being_down_leaves_each_process_reading_on_its_own(oidc_issuer, jwt_client, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    def down(*args, **kwargs):
        raise RedisConnectionError("down")

    for name in ("get", "set", "add"):
        monkeypatch.setattr(cache, name, down)

    for _ in range(2):
        assert jwt_client(oidc_issuer.token()).get("/api/v1/users/").status_code == 200
    assert oidc_issuer.jwks_requests() == 1


@pytest.mark.parametrize(
    ("jwks_uri", "used"),
    [("http://issuer.example/.well-known/jwks.json", False), ("https://issuer.example/.well-known/jwks.json", True)],
)
def test_an_https_issuer_whose_discovery_names_http_keys_is_not_used(oidc_issuer, monkeypatch, jwks_uri, used):
    """Production requires the issuer over https so that no one on the path can swap its keys; a discovery document
    that sends Neena to read them over http would undo that."""
    issuer = "https://issuer.example/"
    monkeypatch.setattr(oidc, "_fetch_json", lambda url: {"issuer": issuer, "jwks_uri": jwks_uri})

    with override_settings(NEENA_OIDC_ISSUER=issuer, NEENA_OIDC_JWKS_URL=""):
        if used:
            assert oidc.jwks_url() == jwks_uri
        else:
            with pytest.raises(IssuerUnavailableError):
                oidc.jwks_url()
