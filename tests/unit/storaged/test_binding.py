"""The names a job's data peer may carry in its certificate (#13): the rule alone."""

from __future__ import annotations

import dataclasses

from storaged.binding import PeerBinding

DIRECTORS = {"main-dir": "a Director of this Storage Daemon"}
FD = PeerBinding(
    role="File Daemon",
    expected="web-fd",
    foreign={**DIRECTORS, "bk-sd": "this Storage Daemon"},
)
SD = PeerBinding(
    role="Storage Daemon",
    foreign={**DIRECTORS, "web-fd": "the job's client (a File Daemon)"},
)


def test_without_a_verified_certificate_nothing_is_bound() -> None:
    assert FD.problem(set()) is None
    assert SD.problem(set()) is None


def test_a_file_daemon_presents_the_jobs_client() -> None:
    assert FD.problem({"web-fd"}) is None
    assert FD.problem({"web-fd", "localhost"}) is None
    problem = FD.problem({"db-fd", "localhost"})
    assert problem is not None
    assert "the File Daemon's certificate is for db-fd, localhost" in problem
    assert "not for 'web-fd' (the job's client)" in problem


def test_another_daemons_name_is_refused_with_what_it_is() -> None:
    for name, what in (("main-dir", "a Director"), ("bk-sd", "this Storage Daemon")):
        problem = FD.problem({name})
        assert problem is not None and f"{name} is {what}" in problem


def test_tls_allowed_cn_replaces_the_clients_name_but_not_the_foreign_rule() -> None:
    allowed = PeerBinding(
        role="File Daemon",
        expected="web",
        allowed=("web-fd", "main-dir"),
        foreign=dict(DIRECTORS),
    )
    assert allowed.problem({"web-fd"}) is None
    problem = allowed.problem({"db-fd"})
    assert problem is not None and "TLS Allowed CN (web-fd, main-dir)" in problem
    # A Director's certificate stays refused on a data connection even when the list names it.
    problem = allowed.problem({"main-dir"})
    assert problem is not None and "main-dir is a Director" in problem


def test_a_storage_daemon_may_carry_any_name_but_another_daemons() -> None:
    assert SD.problem({"bk-sd2"}) is None
    assert SD.problem({"bk-sd"}) is None
    problem = SD.problem({"web-fd", "localhost"})
    assert problem is not None
    assert "the Storage Daemon's certificate is for localhost, web-fd" in problem
    assert "web-fd is the job's client (a File Daemon)" in problem


def test_carrying_the_expected_name_wins_over_a_shared_san() -> None:
    # A certificate naming the client and, as a SAN, a name this SD knows otherwise is the client's.
    assert FD.problem({"web-fd", "main-dir"}) is None


def test_a_storage_daemon_the_director_verified_must_show_that_certificate() -> None:
    verified = dataclasses.replace(SD, verified=("bk-sd2", "localhost"))
    assert verified.problem({"bk-sd2"}) is None
    assert verified.problem({"localhost", "other"}) is None  # the same certificate, another name
    problem = verified.problem({"rogue-sd"})
    assert problem is not None
    assert "not the one the Director verified for it (bk-sd2, localhost)" in problem
    assert verified.problem(set()) is None  # plain TCP: nothing to bind
