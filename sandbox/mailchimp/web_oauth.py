"""The page's OAuth part: the registered apps and the tokens /oauth2/token issued, each live
token with a Revoke button (what an account owner removing the app in Mailchimp does)."""

from __future__ import annotations

from html import escape

from sandbox.mailchimp.oauth import IssuedToken, OAuthServer

_NO_TOKENS = "<p class='muted'>No tokens issued yet: connect through <code>/oauth2/authorize</code>.</p>"

OAUTH_SCRIPT = """
document.querySelectorAll('[data-testid="oauth-tokens"] button[data-revoke]').forEach((button) => {
  button.addEventListener('click', async () => {
    const answer = await fetch('/_sandbox/oauth/revoke', {method: 'POST',
      headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({access_token: button.dataset.revoke})});
    if (answer.ok) { location.reload(); }
  });
});
"""


def _token_row(token: IssuedToken) -> str:
    state = "revoked" if token.revoked else "live"
    button = "" if token.revoked else f'<button data-revoke="{escape(token.access_token)}">Revoke</button>'
    return (
        f'<tr data-state="{state}"><td><code>{escape(token.access_token[:8])}…</code></td>'
        f"<td><code>{escape(token.client_id)}</code></td><td>{state}</td><td>{button}</td></tr>"
    )


def oauth_section(oauth: OAuthServer) -> str:
    with oauth.lock:
        apps = list(oauth.apps.values())
        tokens = list(oauth.tokens.values())
    app_rows = "".join(
        f'<tr data-client-id="{escape(app.client_id)}"><td>{escape(app.name)}</td>'
        f"<td><code>{escape(app.client_id)}</code></td><td>{escape(app.redirect_uri)}</td></tr>"
        for app in apps
    )
    token_rows = "".join(_token_row(token) for token in tokens)
    tokens_table = (
        '<table data-testid="oauth-tokens"><thead><tr><th>Token</th><th>Client id</th><th>State</th><th></th></tr>'
        f"</thead><tbody>{token_rows}</tbody></table>"
        if tokens
        else f'<div data-testid="oauth-tokens">{_NO_TOKENS}</div>'
    )
    return (
        '<table data-testid="oauth-apps"><thead><tr><th>App</th><th>Client id</th><th>Redirect URI</th></tr></thead>'
        f"<tbody>{app_rows}</tbody></table>{tokens_table}"
    )
