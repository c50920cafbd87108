"""Champion vs challenger, compared fairly (undoing a failed run's registry changes: registration_undo).

Fair means on the same exam: the current champion is re-scored on the data the candidate was scored on, the
independent test file (other films) when the run has one, else the candidate's held-out split. The F1 the champion
logged when it was trained came from another split (maybe other data) and is never used to decide.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mlflow.tracking import MlflowClient
from sklearn.pipeline import Pipeline

from sentiment_core import quality_gate, registry
from sentiment_core.evaluation import EvaluationReport
from sentiment_core.quality_gate import QualityFloors
from sentiment_core.settings import CHAMPION_ALIAS
from sentiment_trainer.errors import TrainerError
from sentiment_trainer.scoring import HeldOut


@dataclass(frozen=True)
class Champion:
    version: str
    pipeline: Pipeline
    # What the champion logged on its own test split when it was trained: shown for context, never compared.
    logged_f1: float | None
    run_id: str | None


@dataclass(frozen=True)
class Comparison:
    decision: registry.PromotionDecision
    candidate: EvaluationReport
    # The champion scored on the candidate's exam (None when there is no champion).
    champion: EvaluationReport | None
    champion_logged_f1: float | None = None
    # What both were scored on: EXAM_TEST_FILE or EXAM_HELD_OUT.
    exam: str = "held-out split"


EXAM_TEST_FILE = "test file"
EXAM_HELD_OUT = "held-out split"
TAG_PROMOTION_EXAM = "promotion.exam"


@dataclass(frozen=True)
class Exam:
    """The data candidate and champion are both scored on, and the candidate's report on it."""

    name: str
    candidate: EvaluationReport
    data: HeldOut


def choose_exam(
    held_out_report: EvaluationReport,
    held_out: HeldOut,
    test_report: EvaluationReport | None,
    test: HeldOut | None,
) -> Exam:
    """The independent test file when the run has one (reviews of films the candidate never saw), else held-out."""
    if test_report is not None and test is not None:
        return Exam(EXAM_TEST_FILE, test_report, test)
    return Exam(EXAM_HELD_OUT, held_out_report, held_out)


def fetch_champion(client: MlflowClient, model_name: str) -> Champion | None:
    """The version holding `champion`, loaded (hash-checked, allow-listed types), or None when there is none."""
    current = registry.alias_version(client, model_name, CHAMPION_ALIAS)
    if current is None:
        return None
    version = str(current.version)
    try:
        pipeline = registry.load_version(client, model_name, version)
    except (registry.RegistryError, ValueError) as error:
        # Not transient: retrying cannot fix a bad artifact. Fail before anything is registered.
        raise TrainerError(
            f"cannot load champion v{version} of '{model_name}' to score it on this run's split: {error};"
            " point `champion` at a loadable version (set-alias or rollback) and train again"
        ) from error
    logged = (current.tags or {}).get(registry.METRIC_TAG_PREFIX + "f1")
    return Champion(
        version=version,
        pipeline=pipeline,
        logged_f1=float(logged) if logged is not None else None,
        run_id=current.run_id,
    )


def floor_failures(candidate: EvaluationReport, pipeline: Pipeline, floors: QualityFloors) -> list[str]:
    """The quality floors the candidate misses: its held-out evidence, then the canary texts on the pipeline."""
    failures = quality_gate.held_out_failures(quality_gate.HeldOutEvidence.from_report(candidate), floors)
    failures.extend(quality_gate.canary_failures(pipeline, floors)[0])
    return failures


def compare(
    candidate: EvaluationReport,
    champion: Champion | None,
    held_out: HeldOut,
    min_improvement: float,
    exam: str = EXAM_HELD_OUT,
    failures: list[str] | None = None,
) -> Comparison:
    """Score the champion on the candidate's exam (`held_out`), then let the library decide on the two F1s.

    `failures` (from `floor_failures`) vetoes the promotion whatever the champion scored.
    """
    failures = failures or []
    if champion is None:
        decision = registry.decide_promotion(candidate.f1, None, min_improvement, floor_failures=failures)
        return Comparison(decision, candidate, None, exam=exam)
    champion_report = held_out.score(champion.pipeline)
    decision = registry.decide_promotion(
        candidate.f1, champion_report.f1, min_improvement, champion.version, floor_failures=failures
    )
    return Comparison(decision, candidate, champion_report, champion.logged_f1, exam=exam)


def promote_candidate(
    client: MlflowClient,
    model_name: str,
    version: str,
    candidate: EvaluationReport,
    held_out: HeldOut,
    champion: Champion | None,
    min_improvement: float,
    pipeline: Pipeline,
    floors: QualityFloors,
    exam: str = EXAM_HELD_OUT,
) -> Comparison:
    """Check the quality floors, compare, record the decision on the version, move `champion` or `challenger`.

    The floors are checked before any alias moves: a candidate below them becomes `challenger`, never `champion`.

    The champion was fetched while the candidate trained; if another run moved the alias since, compare with the
    version that holds it now. (An alias already on `version` means an earlier attempt of this step got that far.)
    """
    current = registry.alias_version(client, model_name, CHAMPION_ALIAS)
    current_version = str(current.version) if current is not None else None
    fetched_version = champion.version if champion is not None else None
    if current_version not in (fetched_version, version):
        champion = fetch_champion(client, model_name)
    failures = floor_failures(candidate, pipeline, floors)
    comparison = compare(candidate, champion, held_out, min_improvement, exam, failures)
    applied = registry.promote(client, model_name, version, comparison.decision, floors)
    registry.tag_version(client, model_name, version, {TAG_PROMOTION_EXAM: exam})
    return replace(comparison, decision=applied)
