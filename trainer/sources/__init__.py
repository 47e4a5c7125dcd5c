"""Where training photos come from: ``parkwatch data``.

- ``download``: one file over HTTP(S), resumable (a ``.part`` file and HTTP Range),
  verified by checksum;
- ``archive``: tarball members extracted one by one, refusing the whole archive at the
  first member that would land outside the destination (``../``, absolute paths, links);
- ``oxford_pets``: the Oxford-IIIT Pet data set (CC BY-SA 4.0) as a ``cat``/``dog``
  ImageFolder, with its licence written beside the photos;
- ``importer``: any local ImageFolder copied (or hard-linked) in, every image decoded
  once, duplicates dropped by content hash, rejects reported;
- ``cli``: the ``parkwatch data`` commands.

Every failure is a :class:`SourceError` whose message names the fix. Importing this
package imports neither httpx nor OpenCV; the commands do when they run.
"""

from __future__ import annotations

from ..errors import SourceError

__all__ = ["SourceError"]
