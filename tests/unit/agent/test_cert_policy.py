"""Certificate policy: renewal at 2/3 of the lifetime, exponential backoff, uploads left alone."""

from __future__ import annotations

from agent import cert_policy as policy


def test_renewal_is_at_two_thirds_of_the_lifetime():
    assert policy.renew_at(1000.0, 1000.0 + 90 * 86400) == 1000.0 + 60 * 86400


def test_backoff_doubles_up_to_the_cap_and_rate_limits_wait_longer():
    assert [policy.retry_delay(n, 60, 1000) for n in (1, 2, 3, 4, 5, 6)] == [60, 120, 240, 480, 960,
                                                                            1000]
    assert policy.retry_delay(1, 60, 1000, rate_limited=True) == policy.RATE_LIMIT_SECONDS


def test_new_domain_is_due_now_and_a_failure_is_scheduled_later():
    status = policy.wanted(None, "a.example.com", "web", now=100.0)
    assert policy.due(status, 100.0)
    failed = policy.after_failure(status, "challenge failed", 100.0, base=10)
    assert failed.state == policy.FAILED and failed.last_error == "challenge failed"
    assert failed.next_attempt == 110.0 and not policy.due(failed, 109.9)
    again = policy.after_failure(failed, "challenge failed", 110.0, base=10)
    assert again.next_attempt == 130.0 and again.failures == 2


def test_success_clears_the_error_and_plans_the_renewal():
    status = policy.after_failure(policy.wanted(None, "a.example.com", "web", 0.0), "x", 0.0)
    issued = policy.after_success(status, issuer="CN=ca", serial="ab", not_before=300.0,
                                  not_after=600.0)
    assert issued.state == policy.ISSUED and not issued.last_error and issued.failures == 0
    assert issued.next_attempt == 500.0 and issued.renewals == 0
    renewed = policy.after_success(issued, issuer="CN=ca", serial="cd", not_before=500.0,
                                   not_after=800.0)
    assert renewed.renewals == 1


def test_failed_renewal_keeps_the_certificate_and_retries_before_expiry():
    issued = policy.after_success(policy.wanted(None, "a.example.com", "web", 0.0), issuer="CN=ca",
                                  serial="ab", not_before=0.0, not_after=3000.0)
    failed = policy.after_failure(issued, "rate limited", 2000.0, rate_limited=True, base=10)
    assert failed.state == policy.ISSUED and failed.last_error == "rate limited"
    assert failed.next_attempt <= 2500.0  # halfway to the expiry at most, never after it


def test_uploaded_and_skipped_are_never_due():
    up = policy.uploaded(None, "a.example.com", "web", issuer="CN=me", serial="1",
                         not_before=0.0, not_after=10.0)
    assert not policy.due(up, 1e12)
    skipped = policy.skipped(policy.wanted(None, "a.test", "web", 0.0), "reserved")
    assert not policy.due(skipped, 1e12) and skipped.state == policy.SKIPPED


def test_reserved_names():
    assert policy.reserved_name("shop.test") and policy.reserved_name("x.localhost")
    assert not policy.reserved_name("shop.example.com")
