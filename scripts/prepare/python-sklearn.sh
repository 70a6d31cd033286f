#!/usr/bin/env bash
# npm test's preparation of scikit-learn, the reference the linear probe is checked against
# (test/unit/linearProbe.test.ts). The product never needs Python; this only lets the test run.
# Installs scikit-learn for python3 from pip's index (or mirror) when missing; exits 0 with the
# reason when this machine cannot (the comparison then skips).
set -uo pipefail
command -v python3 >/dev/null || { echo "scikit-learn not prepared: python3 is not installed (the probe's comparison will skip)"; exit 0; }
if python3 -c 'import sklearn, numpy' 2>/dev/null; then
  echo "scikit-learn ready: $(python3 -c 'import sklearn; print(sklearn.__version__)')"
  exit 0
fi
if python3 -m pip install --quiet --disable-pip-version-check --retries 1 --timeout 60 scikit-learn; then
  echo "scikit-learn installed: $(python3 -c 'import sklearn; print(sklearn.__version__)')"
else
  echo "scikit-learn not prepared: pip could not install it (the probe's comparison will skip)"
fi
exit 0
