"""The contract between SkyDriver, the Skymap Scanner and the client manager.

The three programs agree on what is written here and on nothing else: the documents SkyDriver stores, the
messages they send each other, the nside progression, the table of reconstruction names, the settings every
scan-instance process reads from its environment, and the one function that builds a scan instance's
arguments and environment. This package imports none of the three (import-linter checks it), so a change to
one of these shapes is one edit here, and mypy follows it into every program.

Modules:

- `errors`: the error tree shared by the service and its client library (each HTTP error has one status);
- `nsides`: `NSideProgression`, parsed once at the edge and rendered once at a process boundary;
- `recos`: the reconstruction names and what each needs (no physics is imported);
- `documents`: the stored documents (manifest, scan request, result, backlog entry, event, instance record)
  and the scan and instance state enums;
- `messages`: the wire messages (pixel task and result, progress report, workforce report, result upload);
- `settings`: the settings classes of the scanner server, worker and client manager, whose field names are
  the `SKYSCAN_*` / `CLIENT_MANAGER_*` environment variables;
- `instance`: `build_instance()`: scan request + deployment -> argv and environment of every process;
- `k8s_api`, `k8s_objects`: Kubernetes helpers shared by SkyDriver's launcher and the client manager's
  backend (retry policy, names, labels, security contexts, resources).
"""
