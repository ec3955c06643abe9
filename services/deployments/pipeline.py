"""The deploy pipeline: RESOLVE -> BUILD -> [RELEASE_COMMAND] -> START -> HEALTH -> SWITCH -> STOP_OLD -> DONE.

Plain domain logic over two ports (git, the agent). Every phase has a deadline; every failure
ends the deployment with the phase and a reason; a cancel or a lost agent stream is checked
against what the agent actually serves, so the record never claims what did not happen.

An app on several servers is built once, on its first server; with a registry set the image is
pushed and every server runs it by digest (the same bytes everywhere), else each other server
builds the same commit itself. START … STOP_OLD then run server by server, each server's agent
making its own zero-downtime switch of its share of the replicas; `services.deployments.rollout`
decides the order, records each server's outcome, and says what a failure puts back. A server
the app no longer names (it moved) loses the app once the release serves everywhere else.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from collections.abc import Callable, Iterator

from services.agents.port import (
    Agent,
    AgentBusy,
    AgentCancelled,
    AgentError,
    AgentSlotWaitTimeout,
    AgentTimeout,
    RUN_SETTINGS,
    BuildSpec,
    CancelToken,
    ReleaseSpec,
)
from common import runtime_rules
from common.rules import DRAIN_FOLLOW_SECONDS
from services.config import Settings
from services.core.errors import DomainError
from services.core.states import Phase, State, Trigger
from services.deployments import rollout
from services.deployments.recorder import DeploymentSnapshot, Recorder
from services.deployments.rollout import Rollout, Share, Undo
from services.jobs.queue import Claim, StaleClaim
from services.security.secretbox import SecretBox

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
# How long a resumed attempt waits for the agent to end the interrupted attempt's operation.
AGENT_BUSY_SECONDS = 60.0


def _step_text(line: str) -> str:
    """ "Step 2/7 : COPY a b" -> "COPY a b" (what the progress bar shows beside i/n)."""
    return line.split(" : ", 1)[1] if " : " in line else line


class PhaseFailed(Exception):
    def __init__(self, phase: Phase, reason: str):
        super().__init__(reason)
        self.phase = phase
        self.reason = reason


class Cancelled(Exception):
    pass


class DeployPipeline:
    def __init__(self, settings: Settings, recorder_factory: Callable[[Claim], Recorder], git, agents, box: SecretBox,
                 *, clock: Callable[[], float] = time.monotonic, transfer=None):
        self.box = box
        # services.deployments.image_transfer.ImageTransfer (None: never publish, build everywhere).
        self.transfer = transfer
        self.settings = settings
        self.recorders = recorder_factory
        self.git = git
        self.agents = agents
        # Measures build and deploy durations.
        self.clock = clock

    def run(self, claim: Claim, cancel: CancelToken) -> None:
        """Carries out one claimed attempt of a deployment (the worker's runner)."""
        rec = self.recorders(claim)
        snap = rec.begin()
        if snap is None:
            return
        agent: Agent = self.agents.for_server(snap.server_name)
        attempt = claim.attempt
        if attempt > MAX_ATTEMPTS:
            rec.finish(State.FAILED, reason=f"gave up after {MAX_ATTEMPTS} attempts: the control plane stopped during each")
            return
        already: dict[str, tuple[str, str]] = {}
        if attempt > 1:
            rec.log(f"resuming (attempt {attempt}): the control-plane process that ran it stopped or restarted; starting again from RESOLVE")
            servers = self._servers(snap)
            # Each server is asked what it serves: the record says only what happened.
            already = {name: found for name in servers
                       if (found := self._serving(agent if name == snap.server_name else self.agents.for_server(name), snap))}
            if len(already) == len(servers):
                rec.log("its container already serves: the deploy had finished before the restart"
                        if len(servers) == 1 else
                        f"its containers already serve on every server ({', '.join(servers)}): the rollout had finished before the restart")
                if len(servers) > 1:
                    done = Rollout(rollout.plan(servers, max(snap.replicas, len(servers))))
                    for share in done.shares:
                        done.succeeded(share)
                    rec.record_server_outcomes(done.outcomes())
                    self._remove_moved(rec, snap)
                serving = already[servers[0]]
                spec = self._release_spec(snap, snap.image, snap.commit_sha)
                rec.finish(State.SUCCEEDED, app_url=serving[0], url=serving[0], container_id=serving[1],
                           release=self._release_record(spec, snap.image, snap.image_id))
                return
            if already:
                rec.log(f"already serving this release: {', '.join(repr(n) for n in already)}; the rollout goes on with the others")
        if snap.cancel_requested:
            rec.finish(State.CANCELLED, reason="cancelled before it started")
            return
        try:
            self._run(rec, snap, agent, cancel, already)
        except Cancelled:
            if cancel.shutdown:
                return  # left RUNNING: the next control plane resumes it
            rec.finish(State.CANCELLED, reason=f"cancelled during {rec.phase_now.lower()}; the previous release keeps serving")
        except PhaseFailed as failed:
            rec.finish(State.FAILED, reason=failed.reason, failure_phase=failed.phase)
        except DomainError as err:
            rec.finish(State.FAILED, reason=err.message)
        except AgentError as err:
            rec.finish(State.FAILED, reason=f"{rec.phase_now.lower()} failed: {err}")
        except StaleClaim:
            raise  # another attempt owns the deployment now: this one writes nothing more
        except Exception:  # a bug: record it truthfully, keep the worker alive
            log.exception("deployment %s crashed in %s", claim.deployment_id, rec.phase_now)
            rec.finish(State.FAILED, reason=f"internal error during {rec.phase_now.lower()} (see the control-plane log)")

    def _check_cancel(self, rec: Recorder, cancel: CancelToken) -> None:
        if cancel.cancelled or rec.cancel_requested():
            raise Cancelled()

    def _run(self, rec: Recorder, snap: DeploymentSnapshot, agent: Agent, cancel: CancelToken,
             already: dict[str, tuple[str, str]] | None = None) -> None:
        release = snap.source_release
        rec.phase(Phase.RESOLVE, "using the release's commit" if release else f"resolving {snap.branch} of {snap.repo_url}")
        if release:
            sha = release["commit_sha"]
            rec.log(f"config release: the image of deployment {snap.source_id} ({release['image']}) with the app's current settings"
                    if snap.trigger == Trigger.CONFIG else
                    f"redeploying the release of deployment {snap.source_id}: {release['image']}")
            rec.update(commit_sha=sha, commit_message=snap.source_commit_message)
        else:
            sha = snap.requested_commit_sha or snap.commit_sha
            if not sha:
                try:
                    sha = self.git.resolve(snap.repo_url, snap.branch, timeout=self.settings.resolve_timeout)
                except DomainError as err:
                    raise PhaseFailed(Phase.RESOLVE, err.message) from None
            rec.log(f"commit {sha[:12]} ({'requested' if snap.requested_commit_sha else 'head of ' + snap.branch})")
            rec.update(commit_sha=sha)
        self._check_cancel(rec, cancel)

        rec.phase(Phase.BUILD, "reusing the release's image" if release else f"building {snap.app}:{sha[:12]}")
        if release:
            image, image_id = release["image"], release["image_id"]
            rec.log("no build: the release's image is reused")
            rec.update(image=image, image_id=image_id, build_skipped=True, build_seconds=0.0)
        else:
            image, image_id = self._build(rec, snap, sha, agent, cancel)
        self._check_cancel(rec, cancel)

        # A rollback runs the image its release recorded, by id: the tag may name another image
        # by now (a rebuild of that commit with other build settings moves it).
        run_ref = image_id if release and image_id else image
        servers = self._servers(snap)
        plan = rollout.plan(servers, max(snap.replicas, len(servers)))
        progress = Rollout(plan, snap.previous_servers, snap.previous_release is not None)
        if len(plan) == 1:
            spec = replace(self._release_spec(snap, run_ref, sha), replicas=plan[0].replicas)
            rec.record_server_outcomes(progress.outcomes())
            try:
                url, container_id, deploy_seconds = self._deploy(rec, snap, spec, agent, cancel)
            except (PhaseFailed, AgentError, Cancelled) as err:
                if not (isinstance(err, Cancelled) and cancel.shutdown):
                    progress.fail(plan[0], str(getattr(err, "phase", rec.phase_now)),
                                  getattr(err, "reason", "") or str(err) or "cancelled")
                    rec.record_server_outcomes(progress.outcomes())
                raise
            progress.succeeded(plan[0])
            rec.record_server_outcomes(progress.outcomes())
            self._remove_moved(rec, snap)
            rec.finish(State.SUCCEEDED, app_url=url, url=url, container_id=container_id, deploy_seconds=deploy_seconds,
                       release=self._release_record(spec, image, image_id))
            return
        refs, auth = self._images(rec, snap, sha, run_ref, image, progress, agent, cancel)
        spec = self._release_spec(snap, run_ref, sha)
        url, container_id, deploy_seconds = self._roll_out(rec, snap, spec, refs, auth, progress, agent, cancel,
                                                           already or {})
        self._remove_moved(rec, snap)
        rec.finish(State.SUCCEEDED, app_url=url, url=url, container_id=container_id, deploy_seconds=deploy_seconds,
                   release={**self._release_record(spec, image, image_id), "images": self._recorded(refs, image, image_id)})

    @staticmethod
    def _recorded(refs: dict[str, str], image: str, image_id: str) -> dict[str, str]:
        """The image each server ran, as the release keeps it: by id where a tag ran (the tag may
        name another image by the time the release runs again)."""
        return {server: image_id if ref == image and image_id else ref for server, ref in refs.items()}

    @staticmethod
    def _servers(snap: DeploymentSnapshot) -> tuple[str, ...]:
        return tuple(snap.servers) or (snap.server_name,)

    def _agent(self, snap: DeploymentSnapshot, server: str, first: Agent) -> Agent:
        return first if server == snap.server_name else self.agents.for_server(server)

    def _images(self, rec: Recorder, snap: DeploymentSnapshot, sha: str, run_ref: str, image: str,
                progress: Rollout, first: Agent, cancel: CancelToken):
        """What each server runs ({server: image ref}) and the credentials to pull it with (None:
        every ref is on its server's engine). Built once on the first server: published to the
        registry and run by digest everywhere when one is set, else built again on each other
        server from the same commit. A release (rollback, redeploy) runs the refs it recorded."""
        first_server = progress.shares[0].server
        recorded = dict((snap.source_release or {}).get("images") or {})
        refs = {first_server: recorded.get(first_server) or run_ref}
        auth = None
        digest_ref = next((ref for ref in recorded.values() if "@sha256:" in ref), "")
        if digest_ref and self.transfer is not None:
            auth = self.transfer.registry()
        elif not snap.source_release and self.transfer is not None:
            try:
                published = self.transfer.publish(first, image, app=snap.app, log=rec.log,
                                                  timeout=snap.build_timeout_seconds or self.settings.build_timeout)
            except AgentError as err:
                progress.fail(progress.shares[0], str(Phase.BUILD), f"pushing the image to the registry failed: {err}")
                rec.record_server_outcomes(progress.outcomes())
                raise PhaseFailed(Phase.BUILD, progress.failure_reason()) from None
            if published is not None:
                rec.update(image_digest=published.ref)  # as the API shows it: repository@sha256:…
                return {s.server: published.ref for s in progress.shares}, published.auth
        rec.record_server_outcomes(progress.outcomes())
        for share in progress.shares[1:]:
            ref = recorded.get(share.server) or (digest_ref if auth is not None else "")
            if not ref:
                if not digest_ref and not snap.source_release:
                    rec.log(f"no registry set: server {share.server!r} builds {sha[:12]} itself")
                else:
                    rec.log(f"server {share.server!r} has no image of this release recorded: it builds {sha[:12]}")
                try:
                    ref = self._build(rec, snap, sha, self._agent(snap, share.server, first), cancel,
                                      server=share.server)[1]
                except (PhaseFailed, AgentError) as err:
                    reason = err.reason if isinstance(err, PhaseFailed) else f"build failed: {err}"
                    progress.fail(share, str(Phase.BUILD), reason)
                    rec.record_server_outcomes(progress.outcomes())
                    raise PhaseFailed(Phase.BUILD, progress.failure_reason()) from None
            refs[share.server] = ref
            self._check_cancel(rec, cancel)
        return refs, auth

    def _roll_out(self, rec: Recorder, snap: DeploymentSnapshot, spec: ReleaseSpec, refs: dict[str, str], auth,
                  progress: Rollout, first: Agent, cancel: CancelToken, already: dict[str, tuple[str, str]]):
        """Server by server, each its share of the replicas; (url, container id, seconds) of the
        first server. A failure or a cancel on one puts the servers already done back."""
        started = self.clock()
        served: tuple[str, str] | None = None
        for index, share in enumerate(progress.shares):
            if share.server in already:
                rec.log(f"server {share.server!r} already serves this release (an earlier attempt)")
                progress.succeeded(share, "served this release already (an earlier attempt)")
                rec.record_server_outcomes(progress.outcomes())
                served = served or already[share.server]
                continue
            # The release command (migrations) runs once, on the first server, before any switch.
            server_spec = replace(spec, image=refs[share.server], replicas=share.replicas,
                                  pull_auth=auth if "@sha256:" in refs[share.server] else None,
                                  release_command=spec.release_command if index == 0 else [])
            told = (f"server {share.server!r} ({index + 1}/{len(progress.shares)}): "
                    f"{share.replicas} replica{'s' if share.replicas != 1 else ''} of {server_spec.image}")
            if index:  # its own START: a server that cannot even be reached fails there, not in the last one's phase
                rec.phase(Phase.START, told)
            else:
                rec.log(told)
            try:
                self._check_cancel(rec, cancel)
                url, container_id, _ = self._deploy(rec, snap, server_spec, self._agent(snap, share.server, first),
                                                    cancel, server=share.server)
            except Cancelled:
                if not cancel.shutdown:  # a shutdown leaves it RUNNING: the next attempt resumes it
                    self._put_back(rec, snap, progress.fail(share, str(rec.phase_now), "cancelled"), progress, first)
                    rec.record_server_outcomes(progress.outcomes())
                raise
            except (PhaseFailed, AgentError) as err:
                phase, reason = ((err.phase, err.reason) if isinstance(err, PhaseFailed)
                                 else (rec.phase_now, f"{rec.phase_now.lower()} failed: {err}"))
                steps = progress.fail(share, str(phase), reason)
                rec.record_server_outcomes(progress.outcomes())
                self._put_back(rec, snap, steps, progress, first)
                rec.record_server_outcomes(progress.outcomes())
                raise PhaseFailed(phase, progress.failure_reason()) from None
            progress.succeeded(share)
            rec.record_server_outcomes(progress.outcomes())
            served = served or (url, container_id)
        return served[0], served[1], round(self.clock() - started, 3)

    def _put_back(self, rec: Recorder, snap: DeploymentSnapshot, steps: list[rollout.Step], progress: Rollout,
                  first: Agent) -> None:
        """The servers a failed rollout already switched go back to what they ran before it, last
        done first: the previous release by the image it ran there, or nothing where it did not run."""
        previous = snap.previous_release or {}
        for step in steps:
            server = step.share.server
            agent = self._agent(snap, server, first)
            try:
                if step.undo is Undo.REMOVE:
                    rec.log(f"server {server!r}: removing the app (it did not run there before this deployment; volumes kept)")
                    agent.remove_app(snap.app, delete_volumes=False)
                else:
                    ref = ((previous.get("images") or {}).get(server) or previous.get("image_id")
                           or previous["image"])
                    rec.log(f"server {server!r}: back to the previous release (deployment {snap.previous_id}, {ref})")
                    before = replace(snap, id=snap.previous_id, source_release=previous, trigger="")
                    spec = replace(self._release_spec(before, ref, previous.get("commit_sha", "")),
                                   replicas=step.share.replicas,
                                   pull_auth=self.transfer.registry() if self.transfer is not None and "@sha256:" in ref else None)
                    for update in self._when_free(rec, lambda: agent.deploy(self._unsealed(spec), timeout=self._deploy_timeout(spec),
                                                                             cancel=CancelToken()), CancelToken()):
                        if update.failure:
                            raise AgentError(update.error or update.message)
                        if update.message:
                            rec.log(f"[{server}] {update.message}")
                progress.rolled_back(step)
            except AgentError as err:
                rec.log(f"server {server!r} could not be put back: {err}")
                progress.not_rolled_back(step, str(err))

    def _remove_moved(self, rec: Recorder, snap: DeploymentSnapshot) -> None:
        """The app moved off a server (no longer among its servers): once the release serves on the
        new ones, the old server's containers, images and route go; its volumes stay. A server that
        cannot do it is noted in the log; the deployment still succeeded."""
        servers = self._servers(snap)
        for server in snap.previous_servers:
            if server in servers:
                continue
            try:
                removed = self.agents.for_server(server).remove_app(snap.app, delete_volumes=False)
            except (AgentError, DomainError) as err:
                rec.log(f"the app moved off server {server!r} but could not be removed there: "
                        f"{getattr(err, 'message', None) or err}; its old release may still run there")
                continue
            kept = f"; volumes kept: {', '.join(removed.kept_volumes)}" if removed.kept_volumes else ""
            rec.log(f"the app moved off server {server!r}: removed it there "
                    f"({removed.containers} container{'s' if removed.containers != 1 else ''}{kept})")

    def _release_spec(self, snap: DeploymentSnapshot, image: str, sha: str) -> ReleaseSpec:
        """What to run: a rollback's release settings, else the app's current ones (and defaults);
        a CONFIG release runs its source's image with the app's current settings."""
        frozen = {} if snap.trigger == Trigger.CONFIG else (snap.source_release or {})
        run = {**snap.run, **{k: v for k, v in frozen.items() if k in RUN_SETTINGS}}
        run["health_timeout_seconds"] = run.get("health_timeout_seconds") or self.settings.health_timeout
        run["stop_grace_seconds"] = run.get("stop_grace_seconds") or self.settings.stop_grace
        run["volumes"] = [tuple(v) for v in run.get("volumes") or ()]
        # A release command runs for a newly built image only: a rollback reruns none.
        command = [] if snap.source_release else list(snap.release_command)
        return ReleaseSpec(app=snap.app, deployment_id=snap.id, image=image, commit_sha=sha, **run,
                           release_command=command, retain_releases=snap.retain_releases)

    @staticmethod
    def _release_record(spec: ReleaseSpec, image: str, image_id: str) -> dict:
        return {"image": image, "image_id": image_id, "commit_sha": spec.commit_sha,
                **{key: getattr(spec, key) for key in RUN_SETTINGS}}

    def _build(self, rec: Recorder, snap: DeploymentSnapshot, sha: str, agent: Agent, cancel: CancelToken,
               *, server: str = ""):
        """(image, image id) built by `agent`; `server` names another server than the first, whose
        build is only logged (the deployment records the first server's)."""
        prefix = f"[{server}] " if server else ""
        timeout = snap.build_timeout_seconds or self.settings.build_timeout
        spec = BuildSpec(app=snap.app, deployment_id=snap.id, repo_url=snap.repo_url, commit_sha=sha,
                         dockerfile=snap.dockerfile, context_dir=snap.context_dir, force=snap.rebuild,
                         memory_bytes=snap.run.get("memory_limit_bytes") or 0,
                         cpu_millis=snap.run.get("cpu_limit_millis") or 0)
        started = self.clock()
        result = None
        try:
            # Read the stream to its end, not just to the result: only then has the agent
            # finished the operation (and freed the deployment id for Deploy).
            for update in self._when_free(rec, lambda: agent.build(spec, timeout=timeout, cancel=cancel,
                                                                   slot_wait=self.settings.build_slot_wait), cancel):
                if update.line:
                    rec.log(prefix + update.line)
                if update.step_current and update.step_total and not server:
                    rec.progress(update.step_current, update.step_total, _step_text(update.line))
                if update.cancelled:
                    raise Cancelled()
                if update.error:
                    raise PhaseFailed(Phase.BUILD, f"build failed: {update.error}")
                if update.done:
                    seconds = 0.0 if update.skipped else (update.seconds or self.clock() - started)
                    if update.skipped:
                        rec.log(f"{prefix}image {update.image} exists: build skipped")
                    if server:
                        rec.log(f"{prefix}built {update.image} ({update.image_id}) in {seconds:.1f}s")
                        result = update.image, update.image_id
                        continue
                    rec.update(image=update.image, image_id=update.image_id, build_skipped=update.skipped,
                               build_seconds=round(seconds, 3), commit_message=update.commit_message)
                    result = update.image, update.image_id
        except AgentCancelled:
            raise Cancelled() from None
        except AgentSlotWaitTimeout as err:
            raise PhaseFailed(Phase.BUILD, f"{prefix}{err}: the server's other builds held every slot "
                                           f"(TUGBOAT_BUILD_CONCURRENCY on its agent); the build did not start") from None
        except AgentTimeout:
            raise PhaseFailed(Phase.BUILD, f"build exceeded its deadline of {timeout:g}s") from None
        if result is None:
            raise PhaseFailed(Phase.BUILD, "the agent ended the build without a result")
        return result

    def _deploy_timeout(self, spec: ReleaseSpec) -> float:
        # The agent's stream follows the old release's drain for DRAIN_FOLLOW_SECONDS at most; a
        # longer drain (open WebSockets, up to hours) goes on in the background on the agent.
        followed = min(spec.drain_seconds, DRAIN_FOLLOW_SECONDS)
        timeout = spec.health_timeout_seconds + followed + spec.stop_grace_seconds + self.settings.deploy_margin
        if spec.release_command:  # runs on the agent before START, killed at its own deadline
            timeout += runtime_rules.RELEASE_COMMAND_TIMEOUT_SECONDS
        return timeout

    def _unsealed(self, spec: ReleaseSpec) -> ReleaseSpec:
        """The one place secret env is opened: merged into the env the agent starts the container with."""
        return replace(spec, env={**spec.env, **self.box.decrypt_map(spec.secret_env)}, secret_env="")

    def _deploy(self, rec: Recorder, snap: DeploymentSnapshot, spec: ReleaseSpec, agent: Agent, cancel: CancelToken,
                *, server: str = ""):
        """Runs one server's zero-downtime deploy; `server` (several servers) prefixes its lines."""
        timeout = self._deploy_timeout(spec)
        prefix = f"[{server}] " if server else ""
        started = self.clock()
        container_id = ""
        done = None
        try:
            unsealed = self._unsealed(spec)
            for update in self._when_free(rec, lambda: agent.deploy(unsealed, timeout=timeout, cancel=cancel), cancel):
                container_id = update.container_id or container_id
                if update.failure == "CANCELLED":
                    raise Cancelled()
                if update.failure:
                    raise PhaseFailed(update.phase, update.error or update.message)
                if update.phase is not Phase.DONE and update.phase != rec.phase_now:
                    rec.phase(update.phase, prefix + update.message)
                elif update.message:
                    rec.log(prefix + update.message)
                if update.phase is Phase.DONE:
                    done = update.url, container_id, round(self.clock() - started, 3)
                    if update.unserved_seconds:
                        rec.note_unserved(update.unserved_seconds)
        except (AgentCancelled, AgentTimeout, AgentError) as err:
            # The stream is gone; what serves now is the truth.
            outcome = self._serving(agent, snap)
            if outcome:
                rec.log("the new container serves: traffic had switched before the stream ended")
                return outcome[0], outcome[1], round(self.clock() - started, 3)
            if isinstance(err, AgentCancelled):
                raise Cancelled() from None
            if isinstance(err, AgentTimeout):
                raise PhaseFailed(rec.phase_now, f"{rec.phase_now.lower()} exceeded its deadline of {timeout:g}s") from None
            raise
        if done is None:
            raise PhaseFailed(rec.phase_now, "the agent ended the deploy without a result")
        return done

    def _when_free(self, rec: Recorder, start: Callable[[], Iterator], cancel: CancelToken) -> Iterator:
        """The stream `start()` opens, once the agent no longer runs an interrupted attempt's
        operation under this deployment id (AgentBusy: it ends when the agent sees its caller
        gone). Never two operations of one deployment at once; gives up after AGENT_BUSY_SECONDS."""
        deadline = self.clock() + AGENT_BUSY_SECONDS
        told = False
        while True:
            stream = start()
            try:
                first = next(stream)
            except StopIteration:
                return
            except AgentBusy:
                if self.clock() >= deadline or cancel.cancelled:
                    raise
                if not told:
                    rec.log("waiting for the agent to end the interrupted attempt's operation")
                    told = True
                cancel.wait(0.2)
                continue
            yield first
            yield from stream
            return

    def _serving(self, agent: Agent, snap: DeploymentSnapshot) -> tuple[str, str] | None:
        """(url, container id) when this deployment's container is the one serving, else None."""
        try:
            for c in agent.list_containers(snap.app):
                if c.deployment_id == snap.id and c.serving and c.state == "running":
                    return c.url or c.direct_url, c.id
        except AgentError:
            return None
        return None
