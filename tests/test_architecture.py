"""The shape of the code, held with the measures of ``tests/architecture_measures.py``.

Each test names a rule of ``docs/explanation/architecture.md``; a failure
lists what breaks it.
"""

from __future__ import annotations

import architecture_measures as measures


def test_no_import_cycle_even_counting_imports_inside_functions() -> None:
    assert measures.cycles(measures.import_graph(include_function_level=True)) == []


def test_models_import_only_the_ground_floor() -> None:
    wrong = [line for line in measures.wrong_way_imports(measures.import_graph()) if line.startswith("siyu.models")]
    assert wrong == []


def test_services_name_their_collaborators_instead_of_taking_the_workspace() -> None:
    assert measures.workspace_constructors() == []
