"""D3: a bare fleet applied all at once (`salt '*' state.highstate`, the top
file giving db1 postfix.database, the mail hosts postfix) converges: states
that need another minion's data fail saying so and copy nothing, later
highstates complete them (a backup's DNS records gain the primaries that
published while it ran), until one changes nothing and fails nothing."""

from .topology import BACKUP

#: highstates until one changes nothing (each round completes what the last one made possible)
MAX_ROUNDS = 5


def highstate(fleet):
    """{minion: {state id: result}} of `salt '*' state.highstate`."""
    result = fleet.salt.salt("*", "state.highstate")
    assert isinstance(result.data, dict), result.stdout + result.stderr
    return {minion: {key.split("_|-")[1]: value for key, value in states.items()}
            for minion, states in result.data.items() if isinstance(states, dict)}


def failed(rounds):
    return {f"{minion}: {state}": value["comment"] for minion, states in rounds.items()
            for state, value in states.items() if value["result"] is False}


def changed(rounds):
    return {f"{minion}: {state}": value["changes"] for minion, states in rounds.items()
            for state, value in states.items() if value["changes"]}


def test_a_fleet_applied_all_at_once_converges(fleet):
    assert fleet.salt.salt("*", "saltutil.sync_all").returncode == 0
    first = highstate(fleet)
    assert set(first) == {"db1", "mx1", "mx2", BACKUP}
    for state, comment in failed(first).items():
        # only what waits for another minion, and never an empty copy
        assert "requisite" in comment or "not" in comment or "no " in comment, (state, comment)
    records = first[BACKUP].get("postfix-performance-dns-cache-fleet-records")
    if records and records["result"] is False:
        assert records["changes"] == {} and "no primary" in records["comment"]

    rounds = [first]
    while (failed(rounds[-1]) or changed(rounds[-1])) and len(rounds) < MAX_ROUNDS:
        rounds.append(highstate(fleet))
    assert not failed(rounds[-1]), failed(rounds[-1])
    assert changed(rounds[-1]) == {}, f"still changing after {len(rounds)} highstates: {changed(rounds[-1])}"
    assert len(rounds) > 1, "the first highstate of a bare fleet cannot have changed nothing"
