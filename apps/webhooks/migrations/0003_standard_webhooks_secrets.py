"""The generic ``webhook`` integration and the Gmail relay move from Neena's own ``neena_hmac_sha256`` (an HMAC of
the body alone, replayable under a new ``X-Neena-Delivery``) to Standard Webhooks (``standard_webhooks``).

The choice: existing operations keep their key, they are not forced to rotate. Standard Webhooks keys the HMAC with
the bytes a ``whsec_<base64>`` secret encodes, so each stored secret ``S`` is rewritten as ``whsec_`` + base64(``S``
as UTF-8): the key bytes are exactly those the sender already holds. A sender has to change how it signs anyway (new
headers, id and timestamp signed); it can then sign with ``Webhook("whsec_" + base64(S))`` or, without the library,
key the HMAC with ``S`` itself (``openssl ... -hmac "$S"``). Nothing secret is shown or sent anywhere, and no sender
loses deliveries to a rotation it did not ask for; an owner who prefers a fresh ``whsec_`` secret rotates it.

Secrets no configured key can decrypt are left as they are (the operation already answers 503 until the key is
back); once readable, they answer 401 ``signature_unsupported`` until the operation's secret is rotated. The
definitions' ``signature_scheme`` is updated here too, so deliveries verify with the new scheme even before
``sync_catalog`` next runs. Reversing restores the old secrets and scheme name.
"""

import base64

from django.db import migrations

from apps.credentials.encryption import DecryptionError, decrypt_json, encrypt_json

OLD_SCHEME, NEW_SCHEME = "neena_hmac_sha256", "standard_webhooks"
PREFIX = "whsec_"
FIELD = "signing_secret"


def _rewrite_secrets(apps, scheme, rewrite):
    operation_model = apps.get_model("webhooks", "WebhookTriggerOperation")
    operations = operation_model.objects.filter(webhook_trigger_definition__signature_scheme=scheme).exclude(
        signing_secret_ciphertext=""
    )
    for operation in operations.only("id", "signing_secret_ciphertext"):
        try:
            secret = str(decrypt_json(operation.signing_secret_ciphertext).get(FIELD, ""))
        except DecryptionError:
            continue
        rewritten = rewrite(secret)
        if secret and rewritten != secret:
            operation.signing_secret_ciphertext = encrypt_json({FIELD: rewritten})
            operation.save(update_fields=["signing_secret_ciphertext"])


def _as_whsec(secret):
    return secret if secret.startswith(PREFIX) else PREFIX + base64.b64encode(secret.encode()).decode()


def _as_plain(secret):
    if not secret.startswith(PREFIX):
        return secret
    try:
        return base64.b64decode(secret.removeprefix(PREFIX)).decode()
    except UnicodeDecodeError:  # a whsec_ secret made after the move: its key bytes are no text, keep it
        return secret


def forwards(apps, schema_editor):
    _rewrite_secrets(apps, OLD_SCHEME, _as_whsec)
    apps.get_model("integrations", "WebhookTriggerDefinition").objects.filter(signature_scheme=OLD_SCHEME).update(
        signature_scheme=NEW_SCHEME
    )


def backwards(apps, schema_editor):
    _rewrite_secrets(apps, NEW_SCHEME, _as_plain)
    apps.get_model("integrations", "WebhookTriggerDefinition").objects.filter(signature_scheme=NEW_SCHEME).update(
        signature_scheme=OLD_SCHEME
    )


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0002_notification"),
        ("webhooks", "0002_trigger_runs"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
