"""govflow: a BPMN workflow engine for a county government service center.

Importing the package applies the SpiffWorkflow 3.2.0 guards (see engine.runtime.spiff_patches)
so that every entry point (CLI, API, workers, tests) runs on the guarded library.
"""

from engine.runtime import spiff_patches as _spiff_patches

_spiff_patches.apply()

__all__: list[str] = []
