"""Credential changes take effect at once on a running server, despite its credential cache
(RFC 8620 §8.2: the server must be able to revoke access)."""

from __future__ import annotations

from tests.conftest import Server, jmapd


def test_a_revoked_token_stops_working_at_once(server: Server) -> None:
    token = jmapd(server.data, "token", "create", "bob@example.com", "--name", "soon-gone").strip()
    client = server.client_with(token)
    assert client.http.get("/jmap/session").status_code == 200
    jmapd(server.data, "token", "revoke", "bob@example.com", "--name", "soon-gone")
    r = client.http.get("/jmap/session")
    assert r.status_code == 401
    assert "Bearer" in r.headers["www-authenticate"]
    r = client.post(
        {
            "using": ["urn:ietf:params:jmap:core"],
            "methodCalls": [
                [
                    "Blob/copy",
                    {
                        "fromAccountId": server.accounts["bob@example.com"],
                        "accountId": server.accounts["bob@example.com"],
                        "blobIds": [],
                    },
                    "c1",
                ]
            ],
        }
    )
    assert r.status_code == 401


def test_a_changed_password_stops_the_old_one_at_once(server: Server) -> None:
    jmapd(server.data, "account", "add", "erin@example.com", "--password", "old-secret")
    old = server.client_with(("erin@example.com", "old-secret"))
    assert old.http.get("/jmap/session").status_code == 200
    jmapd(server.data, "account", "passwd", "erin@example.com", "--password", "new-secret")
    assert old.http.get("/jmap/session").status_code == 401
    new = server.client_with(("erin@example.com", "new-secret"))
    assert new.http.get("/jmap/session").status_code == 200
    assert old.http.get("/jmap/session").status_code == 401
