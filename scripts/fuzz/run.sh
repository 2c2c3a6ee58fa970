#!/usr/bin/env bash
# The full fuzz run: builds the CLI and the fuzz runner into their own folder (so a rebuild of the working tree
# cannot change binaries under a running fuzz run), then runs the deterministic corpus through the library (a
# worker process under a 4 GB address-space limit, 20 s a case) and through the CLI (one process per case, same
# limit, 20 s of CPU time a case and at most 120 s of wall time: on a loaded shared machine the wall clock alone
# would call a slow start a hang).
#
#   scripts/fuzz/run.sh [LIBRARY_CASES] [CLI_CASES] [OUT_FOLDER]
#
# Defaults: 1,200 library cases and 320 CLI cases (cases 0..N-1 of the corpus; formats take turns, so any prefix
# covers every format), results in artifacts/fuzz/ (library.md, cli.md, *.log; library.tsv / cli.tsv get a line per
# case as it ends, so a run stopped early keeps what it measured). Runs niced, one thread.
# Exit status 0 when there are no defects (crash, signal, hang, OOM, leftover, code run, unnamed refusal).
set -euo pipefail
cd "$(dirname "$0")/../.."
library_cases=${1:-1200}
cli_cases=${2:-320}
out=${3:-artifacts/fuzz}
bin=$out/bin
mkdir -p "$out"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 DOTNET_gcServer=0 DOTNET_CLI_TELEMETRY_OPTOUT=1

echo "building into $bin"
# One folder for both (libtorch once: about 550 MB).
nice -n 10 dotnet build tests/SharpLens.Fuzz -c Release -o "$bin" > "$out/build-fuzz.log" 2>&1 || { tail -20 "$out/build-fuzz.log"; exit 3; }
nice -n 10 dotnet build src/SharpLens.Cli -c Release -o "$bin" > "$out/build-cli.log" 2>&1 || { tail -20 "$out/build-cli.log"; exit 3; }

status=0
if [ "$library_cases" -gt 0 ]; then
  echo "library: $library_cases cases"
  nice -n 10 dotnet "$bin/SharpLens.Fuzz.dll" --mode library --cases "$library_cases" --work "$out/work-library" \
    --report "$out/library.md" --results "$out/library.tsv" > "$out/library.log" 2>&1 || status=1
  tail -n 3 "$out/library.log"
fi
if [ "$cli_cases" -gt 0 ]; then
  echo "cli: $cli_cases cases"
  nice -n 10 dotnet "$bin/SharpLens.Fuzz.dll" --mode cli --cases "$cli_cases" --jobs 1 --cli "$bin/SharpLens.Cli.dll" \
    --work "$out/work-cli" --report "$out/cli.md" --results "$out/cli.tsv" > "$out/cli.log" 2>&1 || status=1
  tail -n 3 "$out/cli.log"
fi
echo "reports: $out/library.md $out/cli.md"
exit $status
