"""RFC 9610 §1.4.1 and §2: the contacts capability, AddressBook/get, /changes, /set."""

from __future__ import annotations

from tests.conformance.contacts import (
    CONTACTS,
    USING,
    books,
    create_card,
    default_book,
    error,
    fresh_account,
    get_cards,
    ok,
)
from tests.conftest import Client, Server

RIGHTS = {"mayRead": True, "mayWrite": True, "mayShare": False, "mayDelete": True}


def test_the_capability_in_the_session(server: Server) -> None:
    client, account = fresh_account(server)
    session = client.session()
    assert session["capabilities"][CONTACTS] == {}
    assert session["accounts"][account]["accountCapabilities"][CONTACTS] == {
        "maxAddressBooksPerCard": 100,
        "mayCreateAddressBook": True,
    }
    assert session["primaryAccounts"][CONTACTS] == account


def test_read_only_account_may_not_create_address_books(alice: Client, ids: dict[str, str]) -> None:
    caps = alice.session()["accounts"][ids["carol"]]["accountCapabilities"][CONTACTS]
    assert caps["mayCreateAddressBook"] is False
    (book,) = ok(alice, "AddressBook/get", {"accountId": ids["carol"]})["list"]
    assert book["myRights"] == {
        "mayRead": True,
        "mayWrite": False,
        "mayShare": False,
        "mayDelete": False,
    }
    denied = error(
        alice, "AddressBook/set", {"accountId": ids["carol"], "create": {"b": {"name": "X"}}}
    )
    assert denied["type"] == "accountReadOnly"


def test_a_new_account_has_one_default_address_book(server: Server) -> None:
    client, account = fresh_account(server)
    out = ok(client, "AddressBook/get", {"accountId": account})
    (book,) = out["list"]
    assert book == {
        "id": book["id"],
        "name": "Personal",
        "description": None,
        "sortOrder": 0,
        "isDefault": True,
        "isSubscribed": True,
        "shareWith": None,
        "myRights": {**RIGHTS, "mayDelete": False},
    }
    assert out["notFound"] == []
    assert isinstance(out["state"], str)


def test_create_update_destroy_and_changes(server: Server) -> None:
    client, account = fresh_account(server)
    state = ok(client, "AddressBook/get", {"accountId": account, "ids": []})["state"]
    out = ok(
        client,
        "AddressBook/set",
        {
            "accountId": account,
            "create": {
                "w": {"name": "Work", "description": "colleagues", "sortOrder": 3},
            },
        },
    )
    assert out["oldState"] == state
    created = out["created"]["w"]
    assert created == {
        "id": created["id"],
        "isDefault": False,
        "isSubscribed": True,
        "shareWith": None,
        "myRights": RIGHTS,
    }
    work = created["id"]
    changes = ok(client, "AddressBook/changes", {"accountId": account, "sinceState": state})
    assert (changes["created"], changes["updated"], changes["destroyed"]) == ([work], [], [])
    assert changes["oldState"] == state and changes["newState"] == out["newState"]
    patch = {"name": "Büro", "isSubscribed": False}
    out2 = ok(client, "AddressBook/set", {"accountId": account, "update": {work: patch}})
    assert out2["updated"] == {work: None}
    assert books(client, account)["Büro"]["isSubscribed"] is False
    changes = ok(
        client, "AddressBook/changes", {"accountId": account, "sinceState": out["newState"]}
    )
    assert changes["updated"] == [work]
    out3 = ok(client, "AddressBook/set", {"accountId": account, "destroy": [work]})
    assert out3["destroyed"] == [work]
    changes = ok(
        client, "AddressBook/changes", {"accountId": account, "sinceState": out2["newState"]}
    )
    assert changes["destroyed"] == [work]


def test_invalid_names_and_sharing(server: Server) -> None:
    client, account = fresh_account(server)
    out = ok(
        client,
        "AddressBook/set",
        {
            "accountId": account,
            "create": {
                "empty": {"name": ""},
                "long": {"name": "x" * 256},
                "order": {"name": "A", "sortOrder": 2**31},
                "shared": {"name": "B", "shareWith": {"p1": {"mayRead": True}}},
                "server": {"name": "C", "isDefault": True},
            },
        },
    )
    nc = out["notCreated"]
    assert nc["empty"]["type"] == "invalidProperties" and nc["empty"]["properties"] == ["name"]
    assert nc["long"]["properties"] == ["name"]
    assert nc["order"]["properties"] == ["sortOrder"]
    assert nc["shared"]["type"] == "forbidden" and nc["shared"]["properties"] == ["shareWith"]
    assert nc["server"]["properties"] == ["isDefault"]


def test_destroy_with_contents(server: Server) -> None:
    client, account = fresh_account(server)
    home = default_book(client, account)
    two = {"a": {"name": "A"}, "b": {"name": "B"}}
    out = ok(client, "AddressBook/set", {"accountId": account, "create": two})
    a, b = out["created"]["a"]["id"], out["created"]["b"]["id"]
    only_a = create_card(client, account, addressBookIds={a: True}, uid="only-a")
    both = create_card(client, account, addressBookIds={a: True, b: True}, uid="both")
    refused = ok(client, "AddressBook/set", {"accountId": account, "destroy": [a]})
    assert refused["notDestroyed"][a]["type"] == "addressBookHasContents"
    card_state = ok(client, "ContactCard/get", {"accountId": account, "ids": []})["state"]
    done = ok(
        client,
        "AddressBook/set",
        {"accountId": account, "destroy": [a], "onDestroyRemoveContents": True},
    )
    assert done["destroyed"] == [a]
    found = get_cards(client, account, [only_a, both])
    assert list(found) == [both]
    assert found[both]["addressBookIds"] == {b: True}
    changes = ok(client, "ContactCard/changes", {"accountId": account, "sinceState": card_state})
    assert changes["destroyed"] == [only_a] and changes["updated"] == [both]
    # the default book cannot be destroyed
    denied = ok(client, "AddressBook/set", {"accountId": account, "destroy": [home]})
    assert denied["notDestroyed"][home]["type"] == "forbidden"


def test_on_success_set_is_default(server: Server) -> None:
    """§4.2: the default changes only when everything succeeded, and both books are told."""
    client, account = fresh_account(server)
    home = default_book(client, account)
    out = ok(
        client,
        "AddressBook/set",
        {"accountId": account, "create": {"n": {"name": "New"}}, "onSuccessSetIsDefault": "#n"},
    )
    new = out["created"]["n"]["id"]
    assert out["created"]["n"]["isDefault"] is True
    assert out["updated"] == {home: {"isDefault": False}}
    assert default_book(client, account) == new
    # back, by id, with nothing else in the call (RFC 9610 Figure 3)
    out = ok(client, "AddressBook/set", {"accountId": account, "onSuccessSetIsDefault": home})
    assert out["updated"] == {home: {"isDefault": True}, new: {"isDefault": False}}
    # a failure anywhere in the call: the default stays
    out = ok(
        client,
        "AddressBook/set",
        {"accountId": account, "create": {"bad": {"name": ""}}, "onSuccessSetIsDefault": new},
    )
    assert out["updated"] is None and default_book(client, account) == home
    # an id not found is ignored
    out = ok(client, "AddressBook/set", {"accountId": account, "onSuccessSetIsDefault": "nope"})
    assert out["updated"] is None and default_book(client, account) == home


def test_unknown_arguments_and_methods(server: Server) -> None:
    client, account = fresh_account(server)
    assert error(client, "AddressBook/set", {"accountId": account, "bogus": 1})["type"] == (
        "invalidArguments"
    )
    assert error(client, "AddressBook/query", {"accountId": account})["type"] == "unknownMethod"
    # without the capability in `using`
    rname, rargs = client.call("AddressBook/get", {"accountId": account}, [USING[0]])
    assert rname == "error" and rargs["type"] == "unknownMethod"
