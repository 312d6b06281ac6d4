"""Credentials and fixtures every sandbox starts with; other parts of the repo depend on these names."""

# The only credentials the sandbox accepts until PUT /_sandbox/keys replaces them. They
# look like the real ones (a Marketing key ends in "-<dc>") so that code parsing the data
# centre out of a key works unchanged.
MARKETING_API_KEY = "0123456789abcdef0123456789abcdef-us21"
OAUTH_ACCESS_TOKEN = "sandbox-oauth-access-token"  # noqa: S105  (a public sandbox credential)
OAUTH_SERVER_PREFIX = "us21"
TRANSACTIONAL_API_KEY = "md-sandbox-0123456789abcdef"

# The audience every sandbox has, kept (emptied) across resets.
DEFAULT_LIST_ID = "a1b2c3d4e5"
DEFAULT_LIST_NAME = "Sandbox Audience"

# from_email domains that Mandrill accepts; any other domain is rejected as "unsigned".
VERIFIED_SENDING_DOMAINS: tuple[str, ...] = ("example.org",)

# The OAuth app every sandbox starts with (login.mailchimp.com side, sandbox/mailchimp/oauth.py).
# Its redirect URI is the local stack's callback on the default port; the stack registers its
# own URL at start, tests register theirs through POST /_sandbox/oauth/apps.
OAUTH_CLIENT_ID = "sandbox-oauth-client"
OAUTH_CLIENT_SECRET = "sandbox-oauth-client-secret"  # noqa: S105  (a public sandbox credential)
OAUTH_REDIRECT_URI = "http://127.0.0.1:3000/connect/mailchimp/callback"
OAUTH_ACCOUNT_EMAIL = "owner@example.org"
