"""The shape of the code, held with the measures of ``tests/architecture_measures.py``.

Each test names a rule of ``docs/explanation/architecture.md``; a failure
lists what breaks it.
"""

from __future__ import annotations

import ast

import architecture_measures as measures


def test_no_import_cycle_even_counting_imports_inside_functions() -> None:
    assert measures.cycles(measures.import_graph(include_function_level=True)) == []


def test_models_import_only_the_ground_floor() -> None:
    wrong = [line for line in measures.wrong_way_imports(measures.import_graph()) if line.startswith("siyu.models")]
    assert wrong == []


def test_channels_import_no_service_campaign_or_workspace() -> None:
    """Channels are adapters: the contact policy reaches them as a collaborator
    (``Channel.policy``), never as an import of the domain."""
    wrong = [line for line in measures.wrong_way_imports(measures.import_graph()) if line.startswith("siyu.channels")]
    assert wrong == []


def test_storage_and_channels_import_only_what_lies_below_them() -> None:
    assert measures.upward_imports(measures.import_graph()) == []


def _reaches_a_service(node: ast.AST) -> bool:
    """``ws.users``, ``self.workspace.campaigns`` ... or a ``.consents(...)`` call."""
    if isinstance(node, ast.Attribute) and node.attr in SERVICES:
        owner = node.value
        return (isinstance(owner, ast.Name) and owner.id in {"ws", "workspace"}) or (
            isinstance(owner, ast.Attribute) and owner.attr == "workspace")
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "consents"


SERVICES = {"users", "tags", "lifecycle", "campaigns", "privacy", "staff", "wecom"}


def test_channels_decide_nothing_about_contacts() -> None:
    """No channel code reads consents or reaches a service through the workspace: consent,
    suppression, lost users and legal holds are ``siyu.campaigns.ContactPolicy``'s, WeCom
    contacts are ``ws.wecom``'s."""
    found = set()
    for name, path in measures.modules().items():
        if not name.startswith("siyu.channels"):
            continue
        for function in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef) and any(
                _reaches_a_service(node) for node in ast.walk(function)
            ):
                found.add(f"{name}:{function.name}")
    assert found == set()


def test_type_ignores_and_bare_any_returns_are_at_most_half_the_baseline() -> None:
    found = measures.measures()
    type_ignores, any_returns = found["type_ignores"], found["public_any_returns"]
    assert isinstance(type_ignores, int) and isinstance(any_returns, list)
    assert type_ignores <= measures.BASELINE_TYPE_IGNORES // 2, type_ignores
    assert len(any_returns) <= measures.BASELINE_PUBLIC_ANY_RETURNS // 2, any_returns


def test_services_name_their_collaborators_instead_of_taking_the_workspace() -> None:
    assert measures.workspace_constructors() == []


def test_the_event_log_takes_the_unit_of_work() -> None:
    """The log, its delivery rounds and relays work on the unit of work and name what else
    they need; only ``siyu worker``'s loop (an application, like the CLI) holds the workspace."""
    found = measures.workspace_constructors(folders=("eventlog",))
    assert found == ["siyu.eventlog.worker.Worker"]


def test_campaign_functions_fit_in_80_lines() -> None:
    found = measures.measures()["long_functions"]
    assert isinstance(found, list)
    assert [f for f in found if f.startswith("siyu.campaigns")] == []


def test_campaigns_is_a_front_over_collaborators_not_mixins() -> None:
    """No campaigns class declares another's private members for the type checker
    (the mark of a mixin reaching into its host), and ``Campaigns`` has no base class."""
    mixins = []
    for name, path in measures.modules().items():
        if not name.startswith("siyu.campaigns"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                if node.name == "Campaigns" and node.bases:
                    mixins.append(f"{name}.Campaigns has bases")
                if any(isinstance(s, ast.If) and measures._is_type_checking(s.test) for s in node.body):
                    mixins.append(f"{name}.{node.name} declares members under TYPE_CHECKING")
    assert mixins == []


def test_campaign_status_and_state_are_written_in_one_place() -> None:
    """Only ``siyu.campaigns.records.save`` writes a campaign's status or state, so every
    status change passes the transitions table."""
    writers = [
        name for name, path in measures.modules().items()
        if name.startswith("siyu.campaigns") and "campaigns.update(" in path.read_text(encoding="utf-8")
    ]
    assert writers == ["siyu.campaigns.records"]
