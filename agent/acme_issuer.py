"""ACME (RFC 8555) issuance over HTTP-01 with the `acme` library: the only module that imports it.

One account per agent: its key is made on first use and kept in `<tls>/acme/account-key.pem`
(0600), its registration beside it, so renewals reuse the account (a CA that lost it, as a
restarted pebble does, gets a new registration). Each domain gets its own key and certificate.

The HTTP-01 answer is published by the caller (`answer(token, key_authorization)`), which puts it
in the front door's challenge map; the CA then fetches it through the front door itself.

Errors come out as `AcmeFailure` with a one-line reason fit for users and a `rate_limited` flag;
no key material is ever in one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import josepy as jose
import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from agent.tls_files import new_key_pem
from common.files import write_atomic

log = logging.getLogger(__name__)

LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
PUBLIC_DIRECTORIES = (LETS_ENCRYPT, LETS_ENCRYPT_STAGING)
ORDER_TIMEOUT = 90.0
USER_AGENT = "tugboat-agent"


@dataclass(frozen=True)
class AcmeSettings:
    """Where certificates come from: `directory` ("" when ACME is off), an optional CA bundle to
    trust the directory with (a private ACME server such as pebble), an optional contact email."""

    directory: str = LETS_ENCRYPT
    ca_bundle: str = ""
    email: str = ""
    retry_base: float = 60.0

    @property
    def enabled(self) -> bool:
        return bool(self.directory)

    @property
    def public(self) -> bool:
        return self.directory in PUBLIC_DIRECTORIES

    @classmethod
    def from_values(cls, directory: str | None = None, ca_bundle: str | None = None,
                    email: str | None = None, environ=None) -> "AcmeSettings":
        """Explicit values, else TUGBOAT_ACME_DIRECTORY ("production", "staging", "off" or a
        URL), TUGBOAT_ACME_CA_BUNDLE, TUGBOAT_ACME_EMAIL, TUGBOAT_ACME_RETRY_SECONDS."""
        env = os.environ if environ is None else environ
        value = (directory or env.get("TUGBOAT_ACME_DIRECTORY") or "production").strip()
        value = {"production": LETS_ENCRYPT, "staging": LETS_ENCRYPT_STAGING,
                 "off": ""}.get(value, value)
        if value and not value.startswith(("https://", "http://")):
            raise ValueError(f"invalid ACME directory {value!r}: use production, staging, off or "
                             "the directory's https:// URL")
        return cls(directory=value, ca_bundle=(ca_bundle or env.get("TUGBOAT_ACME_CA_BUNDLE") or ""),
                   email=(email or env.get("TUGBOAT_ACME_EMAIL") or ""),
                   retry_base=float(env.get("TUGBOAT_ACME_RETRY_SECONDS") or 60.0))


class AcmeFailure(Exception):
    """An order did not give a certificate; `str()` is the reason shown to users."""

    def __init__(self, reason: str, rate_limited: bool = False) -> None:
        super().__init__(reason)
        self.rate_limited = rate_limited


@dataclass(frozen=True)
class Issued:
    fullchain_pem: bytes
    key_pem: bytes


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


class AcmeIssuer:
    """Issues certificates from `settings.directory` with the account kept in `account_dir`."""

    def __init__(self, settings: AcmeSettings, account_dir: Path) -> None:
        self.settings = settings
        self.account_dir = Path(account_dir)
        self._client: client.ClientV2 | None = None

    # -- account
    def _account_key(self) -> jose.JWKRSA:
        path = self.account_dir / "account-key.pem"
        if not path.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            write_atomic(path, key.private_bytes(serialization.Encoding.PEM,
                                                 serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()), mode=0o600)
        return jose.JWKRSA(key=serialization.load_pem_private_key(path.read_bytes(), None))

    def _registration_file(self) -> Path:
        # One registration per directory: a changed directory registers anew.
        name = "".join(c if c.isalnum() else "_" for c in self.settings.directory)[-80:]
        return self.account_dir / f"account-{name}.json"

    def _connect(self, fresh: bool = False) -> client.ClientV2:
        if self._client is not None and not fresh:
            return self._client
        verify: bool | str = self.settings.ca_bundle or True
        net = client.ClientNetwork(self._account_key(), user_agent=USER_AGENT, verify_ssl=verify)
        directory = client.ClientV2.get_directory(self.settings.directory, net)
        acme = client.ClientV2(directory, net=net)
        saved = self._registration_file()
        if saved.exists() and not fresh:
            net.account = messages.RegistrationResource.json_loads(saved.read_text())
        else:
            contact = (f"mailto:{self.settings.email}",) if self.settings.email else ()
            try:
                regr = acme.new_account(messages.NewRegistration.from_data(
                    terms_of_service_agreed=True, **({"email": self.settings.email}
                                                     if contact else {})))
            except errors.ConflictError as exc:  # the key has an account already
                regr = acme.query_registration(messages.RegistrationResource(uri=exc.location))
            write_atomic(saved, json.dumps(regr.to_json()), mode=0o600)
        self._client = acme
        return acme

    # -- issuance
    def issue(self, domain: str, answer: Callable[[str, str], None],
              withdraw: Callable[[str], None]) -> Issued:
        """A new key and certificate for `domain` over HTTP-01. Raises AcmeFailure."""
        try:
            return self._issue(domain, answer, withdraw)
        except messages.Error as exc:
            if exc.code == "accountDoesNotExist":
                log.info("the ACME server does not know our account: registering again")
                self._connect(fresh=True)
                try:
                    return self._issue(domain, answer, withdraw)
                except (messages.Error, errors.Error, requests.RequestException) as again:
                    raise self._failure(again) from None
            raise self._failure(exc) from None
        except (errors.Error, requests.RequestException, ValueError) as exc:
            raise self._failure(exc) from None

    def _issue(self, domain: str, answer: Callable[[str, str], None],
               withdraw: Callable[[str], None]) -> Issued:
        acme = self._connect()
        key_pem = new_key_pem()
        order = acme.new_order(crypto_util.make_csr(key_pem, [domain]))
        tokens = []
        try:
            for authz in order.authorizations:
                if authz.body.status == messages.STATUS_VALID:
                    continue  # reused authorization: nothing to prove
                challenge = next((c for c in authz.body.challenges
                                  if isinstance(c.chall, challenges.HTTP01)), None)
                if challenge is None:
                    raise AcmeFailure(f"the ACME server offers no HTTP-01 challenge for {domain}")
                response, validation = challenge.response_and_validation(acme.net.key)
                token = challenge.chall.encode("token")
                answer(token, validation)
                tokens.append(token)
                acme.answer_challenge(challenge, response)
            deadline = dt.datetime.now() + dt.timedelta(seconds=ORDER_TIMEOUT)
            order = acme.poll_and_finalize(order, deadline=deadline)
        finally:
            for token in tokens:
                try:
                    withdraw(token)
                except Exception as exc:  # a stale token answers nothing useful: log only
                    log.warning("could not withdraw an ACME challenge answer: %s", exc)
        return Issued(order.fullchain_pem.encode(), key_pem)

    @staticmethod
    def _failure(exc: BaseException) -> AcmeFailure:
        if isinstance(exc, AcmeFailure):
            return exc
        if isinstance(exc, messages.Error):
            return AcmeFailure(_one_line(f"{exc.code or exc.typ}: {exc.detail or exc.description}"),
                               rate_limited=exc.code == "rateLimited")
        if isinstance(exc, errors.ValidationError):
            details = []
            for authzr in exc.failed_authzrs:
                for chall in authzr.body.challenges:
                    if chall.error is not None:
                        details.append(f"{chall.chall.typ} for {authzr.body.identifier.value}: "
                                       f"{chall.error.detail or chall.error.code}")
            return AcmeFailure(_one_line("challenge failed: " + ("; ".join(details) or str(exc))))
        if isinstance(exc, errors.IssuanceError):
            return AcmeFailure(_one_line(f"finalize failed: {exc.error.detail or exc.error.code}"),
                               rate_limited=exc.error.code == "rateLimited")
        if isinstance(exc, errors.TimeoutError):
            return AcmeFailure("the ACME order did not complete in time")
        if isinstance(exc, requests.RequestException):
            return AcmeFailure(_one_line(f"cannot reach the ACME directory "
                                         f"{exc.request.url if exc.request else ''}: "
                                         f"{type(exc).__name__}"))
        return AcmeFailure(_one_line(f"{type(exc).__name__}: {exc}"))
