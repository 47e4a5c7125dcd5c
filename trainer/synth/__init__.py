"""Synthetic data for parkwatch: cartoon animals, camera shifts, close-up and park clips.

What lives here (one purpose per module, docs in docs/scenes.md):

- ``cartoon``: cartoon cats and dogs, the cartoon park, ImageFolder datasets;
- ``shifts``: camera shifts on stills (night, IR, blur, rain, tilt, dusk, JPEG);
- ``photos``: which real photos a clip may film (the trainer's split rule);
- ``cutout``: animals cut out of photos (GrabCut), cached on disk;
- ``closeup``: per-segment clips of one animal filling the frame;
- ``scenes`` (with ``spec``, ``timeline``, ``backdrop``, ``motion``, ``figures``,
  ``actors``, ``cast``, ``sprites``, ``conditions``): wide park clips;
- ``groundtruth``: the ``parkwatch-scene/1`` sidecar and questions about it;
- ``video``: MJPG writing and reading, the burnt-in clock.

Rules: the trainer, scripts, tests and benchmarks import this package; the edge agent
never does (it must stay free of the trainer). Importing it does not import torch: only
``PhotoPool.photos`` does, to apply the trainer's own split rule.
"""

from .cartoon import LABELS, animal_layer, generate_dataset, render_animal
from .closeup import make_real_video, make_video
from .cutout import Cutout, CutoutCache, cut_out
from .groundtruth import (
    ANIMAL_LABELS,
    CONDITIONS,
    DISTRACTOR_LABELS,
    FORMAT,
    ConditionSpan,
    FrameObject,
    SceneTruth,
    Track,
    sidecar_path,
)
from .photos import Photo, PhotoPool, held_out_photos
from .scenes import Scene, SceneFrame, scene_truth, write_clip
from .shifts import SHIFTS, apply_shift
from .spec import SceneSpec
from .timeline import Schedule

__all__ = [
    "ANIMAL_LABELS",
    "CONDITIONS",
    "DISTRACTOR_LABELS",
    "FORMAT",
    "LABELS",
    "SHIFTS",
    "ConditionSpan",
    "Cutout",
    "CutoutCache",
    "FrameObject",
    "Photo",
    "PhotoPool",
    "Scene",
    "SceneFrame",
    "SceneSpec",
    "SceneTruth",
    "Schedule",
    "Track",
    "animal_layer",
    "apply_shift",
    "cut_out",
    "generate_dataset",
    "held_out_photos",
    "make_real_video",
    "make_video",
    "render_animal",
    "scene_truth",
    "sidecar_path",
    "write_clip",
]
