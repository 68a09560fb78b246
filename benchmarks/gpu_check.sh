#!/usr/bin/env bash
# One prepared GPU check for a session that has a GPU (budget: <= 5 minutes on one H200).
#
#   bash .gpu/run.sh bash benchmarks/gpu_check.sh   # on the GPU machine, through the offline
#                                                   # bundle (../shared/gpu-offline/build.sh .gpu)
#   bash benchmarks/gpu_check.sh --cpu-dry-run      # here: the same wiring on the CPU, tiny sizes
#
# Sections, each time-boxed with `timeout`; a failure is recorded in the table, never fatal:
#   a  pytest -m gpu (tests/test_gpu.py: bf16 + channels_last on CUDA, 4 trials at 0.25 GPU,
#      split kept on the GPU with no per-batch host-to-device copy)
#   b  images/s: bare loop vs one archsweep trial (benchmarks/overhead.py --device cuda), and
#      1, 2, 4 trials packed on one GPU
#   c  the full variant-1 study search_spaces/resnet_tiny_imagenet.py at course budget: wall time,
#      the run's timeline line (share of wall time training, trials at once) and final test
#      accuracy (goals: <= 90 s, >= 75% training, >= 3 at once, >= 80 % test)
#   f  levers on CUDA (benchmarks/cuda_levers.py): channels_last, batch 256, torch.compile,
#      CUDA graphs, each against the defaults measured right before it; prints the winner
#   d  reference models: benchmarks/reference_table.py --gpu (recorded "missing" if absent)
#   e  issue 19: the recipe study search_spaces/final_recipe.py (goal <= 240 s), its best recipe
#      exported, then variant 1 with that recipe in A.5: A.5's test accuracy (goal >= 0.80).
#      ~9.5 minutes, so only on request, in a call of its own:
#      `bash benchmarks/gpu_check.sh --only e --budget-s 600` (dry run: add --cpu-dry-run)
# A section whose time box no longer fits the 5-minute budget is recorded as SKIPPED, naming the
# `--only` call that runs it: a, b, c and f fill ~5 minutes, so d (a 180 s budget of its own)
# runs in a second call: `bash benchmarks/gpu_check.sh --only d`.
# The dry run's boxes grow with the machine's load (x (1 + load average / cores)), so a loaded
# 2-core machine gets the time an idle one would (on an idle AMD EPYC, c took 95 s of 85).
# Writes $OUT/gpu_check.json and $OUT/gpu_check.md (or ./gpu_check/ without $OUT), plus each
# section's log. Data: $ARCHSWEEP_DATA, else ./shared/datasets, else ../shared/datasets.
set -u
cd "$(dirname "$0")/.."

DRY=0
ONLY="a,b,c,f,d"  # e (the recipe study) only on request
BUDGET_S=300  # the whole check: 5 minutes of GPU time
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu-dry-run) DRY=1 ;;
    --only) ONLY="${2:?--only needs a list such as a,b or e}"; shift ;;
    --budget-s) BUDGET_S="${2:?--budget-s needs seconds}"; shift ;;
    *) echo "usage: bash benchmarks/gpu_check.sh [--cpu-dry-run] [--only a,b,c,f,d,e]" \
            "[--budget-s 300]  (got: $1)" >&2; exit 2 ;;
  esac
  shift
done
OUTDIR="${OUT:-./gpu_check}"
mkdir -p "$OUTDIR"
OUTDIR="$(cd "$OUTDIR" && pwd)"
RESULTS="$OUTDIR/sections.tsv"
: > "$RESULTS"
T0=$(date +%s)

# --- environment: the project's venv, else whatever python the offline bundle put on the path --
PY=""
for cand in .venv/bin/python python3 python; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import torch, ray' >/dev/null 2>&1; then
    PY="$cand"; break
  fi
done
if [ -z "$PY" ]; then
  # The GPU machine has no network and no Ray: pip cannot help there. The offline bundle
  # carries a trimmed Ray, Optuna and 10 Tiny ImageNet classes (~40 MiB).
  echo "ERROR: torch and ray are not importable. Build the offline bundle here with" >&2
  echo "  bash ../shared/gpu-offline/build.sh .gpu" >&2
  echo "and run through it: bash .gpu/run.sh bash benchmarks/gpu_check.sh" >&2
  printf 'setup\tFAIL\tno torch/ray: run through the offline bundle (.gpu/run.sh)\n' >> "$RESULTS"
fi

if [ -z "${ARCHSWEEP_DATA:-}" ]; then
  for d in ./shared/datasets ../shared/datasets; do
    [ -d "$d/tiny-imagenet-200" ] && { ARCHSWEEP_DATA="$(cd "$d" && pwd)"; break; }
  done
fi
export ARCHSWEEP_DATA="${ARCHSWEEP_DATA:-./data}"
export TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1

if [ "$DRY" = 1 ]; then
  export ARCHSWEEP_GPU_DRY_RUN=1 CUDA_VISIBLE_DEVICES=""
  # The wiring, not the numbers: every section runs its real command at the smallest size
  # (16 px, 1 batch), so the whole dry run fits in 2 minutes on a 2-core CPU. Section a leaves
  # out the four-trial study (at 0 GPUs it is just a study run, which section c already does).
  # Boxes measured on an idle 2-core machine with about 2x headroom, times the load factor.
  LOADF="$(awk -v n="$(nproc)" '{ f = 1 + $1 / n; printf "%.2f", (f < 1 ? 1 : f) }' \
    /proc/loadavg 2>/dev/null || echo 1)"
  scale() { awk -v b="$1" -v f="$LOADF" 'BEGIN { printf "%d", b * f }'; }
  DEV=cpu; TB_A=$(scale 60); TB_B=$(scale 80); TB_C=$(scale 170); TB_D=$(scale 60)
  TB_F=$(scale 60); BUDGET_S=100000
  echo "dry run: load factor $LOADF, boxes a=$TB_A b=$TB_B c=$TB_C d=$TB_D f=$TB_F s"
  LEVER_ARGS=(--device cpu --quick)
  A_ARGS=(-k "not four_trials")
  # No --packed here: packing only changes --gpus-per-trial, which is 0 on the CPU.
  OVERHEAD_ARGS=(--classes 2 --epochs 2 --batch-size 8 --max-batches 1 --cpus-per-trial 1)
  STUDY_ARGS=(--set epochs=1 --set classes=2 --set image_size=16 --set batch_size=8
              --set max_batches=1 --max-concurrent 2)
  REF_ARGS=(--gpu --budget-s 18 --workers 1 --max-batches 1 --skip-cpu)
else
  DEV=cuda; TB_A=40; TB_B=90; TB_C=120; TB_D=230; TB_F=50
  LEVER_ARGS=(--device cuda --rounds 1 --steps 20 --warmup 8)
  A_ARGS=()
  OVERHEAD_ARGS=(--device cuda --precision auto --epochs 4 --cpus-per-trial 2 --packed 1 2 4)
  STUDY_ARGS=(--gpus-per-trial 0.25 --cpus-per-trial 2 --set precision=bf16)
  REF_ARGS=(--gpu --budget-s 180)
fi

# record NAME STATUS DETAIL: one row of the table.
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$RESULTS"; echo "[$1] $2: $3"; }

# run_boxed NAME SECONDS CMD...: time-boxed, log to $OUTDIR/NAME.log; sets RC and SECS.
run_boxed() {
  local name=$1 box=$2; shift 2
  local t=$(date +%s)
  echo "== $name (<= ${box}s): $*"
  timeout --kill-after=10 "$box" "$@" > "$OUTDIR/$name.log" 2>&1
  RC=$?; SECS=$(( $(date +%s) - t ))
  tail -n 5 "$OUTDIR/$name.log" | sed 's/^/    /'
}

# want SECTION BOX NAME: chosen with --only, and its time box fits what is left of the budget.
want() {
  case ",$ONLY," in *",$1,"*) ;; *) return 1 ;; esac
  local left=$(( BUDGET_S - ($(date +%s) - T0) ))
  if [ "$2" -gt "$left" ]; then
    record "$3" SKIPPED "needs ${2}s, ${left}s left of the ${BUDGET_S}s budget: run --only $1"
    return 1
  fi
}

status_of() { case "$1" in 0) echo PASS;; 124|137) echo TIMEOUT;; *) echo FAIL;; esac; }

# --- the sections (each records its own row) ---------------------------------------------

# --- a: pytest -m gpu ----------------------------------------------------------------------
section_a() {
  if want a "$TB_A" a_pytest_gpu; then
  run_boxed a_pytest_gpu "$TB_A" "$PY" -m pytest -m gpu tests/test_gpu.py -q -ra \
    -p no:cacheprovider "${A_ARGS[@]}"
  record a_pytest_gpu "$(status_of $RC)" \
    "$(grep -E '[0-9]+ (passed|failed|skipped|error)' "$OUTDIR/a_pytest_gpu.log" | tail -n 1) (${SECS}s)"
  fi
}

# --- b: bare loop vs one trial, and packed trials ---------------------------------------------
section_b() {
  if want b "$TB_B" b_overhead; then
  run_boxed b_overhead "$TB_B" "$PY" benchmarks/overhead.py --data-root "$ARCHSWEEP_DATA" \
    "${OVERHEAD_ARGS[@]}" --json "$OUTDIR/overhead.json"
  detail="$(grep -E '^ratio \(b\)/\(a\)' "$OUTDIR/b_overhead.log" | tail -n 1)"
  packed="$(grep -E 'trial\(s\) at once' "$OUTDIR/b_overhead.log" | sed -E 's/ \(sum of.*\)//' \
    | tr '\n' ';')"
  record b_overhead "$(status_of $RC)" "${detail:-no ratio line} (goal >= 0.95); ${packed} (${SECS}s)"
  fi
}

# --- c: the full variant-1 study at course budget ---------------------------------------------
section_c() {
  if want c "$TB_C" c_variant1; then
  run_boxed c_variant1 "$TB_C" "$PY" -m orchestrator.run search_spaces/resnet_tiny_imagenet.py \
    --data-root "$ARCHSWEEP_DATA" --storage "$OUTDIR/runs" --fresh "${STUDY_ARGS[@]}"
  # The final stage's test evaluation (evaluation/final.json), else the log's test-set line.
  acc="$("$PY" -c 'import json, sys; m = json.load(open(sys.argv[1]))["metrics"]
print(f"test_acc {m[\"test_acc\"]:.4f}")' \
    "$OUTDIR/runs/resnet_tiny_imagenet/evaluation/final.json" 2>/dev/null)"
  [ -n "$acc" ] || acc="$(grep -oE 'test_acc [0-9.]+' "$OUTDIR/c_variant1.log" | tail -n 1)"
  # The run's timeline: share of wall time training, trials at once (analysis/timeline.py).
  timeline="$("$PY" -c 'import sys
from analysis.rundir import load_study
from analysis.timeline import study_timeline
print(study_timeline(load_study(sys.argv[1])).line())' \
    "$OUTDIR/runs/resnet_tiny_imagenet" 2>/dev/null)"
  record c_variant1 "$(status_of $RC)" \
    "wall ${SECS}s (goal <= 90 s); ${timeline:-no timeline} (goals >= 75%, >= 3 at once); \
${acc:-no final test accuracy} (goal >= 0.80)"
  fi
}

# --- f: levers on CUDA ---------------------------------------------------------------------
section_f() {
  if want f "$TB_F" f_levers; then
    run_boxed f_levers "$TB_F" "$PY" benchmarks/cuda_levers.py --data-root "$ARCHSWEEP_DATA" \
      "${LEVER_ARGS[@]}" --json "$OUTDIR/levers.json"
    rows="$(grep -E 'x( |$)' "$OUTDIR/f_levers.log" | sed -E 's/ +/ /g' | tr '\n' ';')"
    record f_levers "$(status_of $RC)" \
      "${rows:-no lever rows} $(grep -E '^winner:' "$OUTDIR/f_levers.log") (${SECS}s)"
  fi
}

# --- d: reference models ----------------------------------------------------------------------
section_d() {
  if [ ! -f benchmarks/reference_table.py ]; then
    record d_reference missing "benchmarks/reference_table.py is not in this checkout"
  elif want d "$TB_D" d_reference; then
    run_boxed d_reference "$TB_D" "$PY" benchmarks/reference_table.py "${REF_ARGS[@]}" \
      --json "$OUTDIR/reference.json"
    last="$(grep -viE 'warn|resource_tracker' "$OUTDIR/d_reference.log" | tail -n 1)"
    record d_reference "$(status_of $RC)" "${last:-no output} (${SECS}s)"
  fi
}

# --- e: the recipe study, then variant 1 with its recipe (issue 19) ----------------------------
# Dry run: --smoke sizes (every trial one epoch of 2 batches), 16 px, 2 classes. The recipe goes
# to A.5 through ARCHSWEEP_A5_RECIPE (search_spaces/resnet_tiny_imagenet.py), into its own run
# name so section c's run directory is left as it is.
section_e() {
  local tb_recipe tb_v1 args
  if [ "$DRY" = 1 ]; then
    tb_recipe=600; tb_v1=600  # 20 + 11 smoke trials: minutes on a busy 2-core CPU
    args=(--smoke --set classes=2 --set image_size=16 --max-concurrent 2)
  else
    tb_recipe=270; tb_v1=310
    args=(--gpus-per-trial 0.25 --cpus-per-trial 2 --set precision=bf16)
  fi
  if want e $(( tb_recipe + tb_v1 )) e_recipe; then
    run_boxed e_recipe "$tb_recipe" "$PY" -m orchestrator.run search_spaces/final_recipe.py \
      --data-root "$ARCHSWEEP_DATA" --storage "$OUTDIR/runs" --fresh "${args[@]}"
    local recipe_rc=$RC recipe_s=$SECS
    "$PY" -m search_spaces.final_recipe --export "$OUTDIR/runs/final_recipe" \
      "$OUTDIR/a5_recipe.json" > "$OUTDIR/e_export.log" 2>&1
    local export_rc=$?
    "$PY" -m analysis.report "$OUTDIR/runs/final_recipe" > "$OUTDIR/e_report.log" 2>&1
    local saved
    saved="$(grep -m 1 -oE 'Epochs trained: [0-9]+ under ASHA against [0-9]+ for FIFO[^:]*: [0-9.]+x' \
      "$OUTDIR/runs/final_recipe/report/report.md" 2>/dev/null)"
    record e_recipe "$(status_of $(( recipe_rc | export_rc )))" \
      "wall ${recipe_s}s (goal <= 240 s); ${saved:-no ASHA savings line}; $(tail -n 2 \
      "$OUTDIR/e_export.log" | tr '\n' ' ' | tr '\t' ' ')"
    [ "$export_rc" = 0 ] || { record e_variant1_recipe FAIL "no recipe to train A.5 with"; return; }
    ARCHSWEEP_A5_RECIPE="$OUTDIR/a5_recipe.json" run_boxed e_variant1_recipe "$tb_v1" \
      "$PY" -m orchestrator.run search_spaces/resnet_tiny_imagenet.py --data-root "$ARCHSWEEP_DATA" \
      --storage "$OUTDIR/runs" --name resnet_tiny_imagenet_recipe --fresh "${args[@]}"
    acc="$("$PY" -c 'import json, sys; m = json.load(open(sys.argv[1]))["metrics"]
print(f"A.5 test_acc {m[\"test_acc\"]:.4f}")' \
      "$OUTDIR/runs/resnet_tiny_imagenet_recipe/evaluation/final.json" 2>/dev/null)"
    record e_variant1_recipe "$(status_of $RC)" \
      "wall ${SECS}s, ${acc:-no A.5 test accuracy} (goal >= 0.80); recipe study report: runs/final_recipe/report"
  fi
}

if [ -n "$PY" ]; then
  "$PY" - > "$OUTDIR/device.txt" 2>&1 <<'EOF'
import torch
from trainables.precision import cpu_bf16_flags, resolve_precision
if torch.cuda.is_available():
    d = torch.device("cuda", 0)
    print(f"{torch.cuda.get_device_name(d)}, capability {torch.cuda.get_device_capability(d)}, "
          f"torch {torch.__version__}, auto precision {resolve_precision('auto', d)}")
else:
    print(f"CPU only, torch {torch.__version__}, bf16 flags {cpu_bf16_flags()}, "
          f"auto precision {resolve_precision('auto', torch.device('cpu'))}")
EOF
  record device "$( [ $? = 0 ] && echo PASS || echo FAIL )" "$(tail -n 1 "$OUTDIR/device.txt")"

  if [ "$DRY" = 1 ]; then
    # The dry run checks wiring at the smallest sizes; each pair mostly waits (Ray start-up,
    # Tune's per-stage set-up), so a runs beside b and c beside d: under 2 minutes.
    section_a & section_b & wait
    section_c & section_d & wait
    section_f; section_e
  else
    section_a; section_b; section_c; section_f; section_d; section_e
  fi
fi

# --- table: JSON + markdown ---------------------------------------------------------------------
TOTAL=$(( $(date +%s) - T0 ))
python3 - "$RESULTS" "$OUTDIR" "$DRY" "$TOTAL" <<'EOF'
import json, sys
from pathlib import Path
results, outdir, dry, total = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
rows = [dict(zip(("section", "status", "detail"), line.split("\t", 2)))
        for line in results.read_text().splitlines() if line]
rows.sort(key=lambda r: r["section"] != "device")  # then the sections in the order they ran
doc = {"mode": "cpu-dry-run" if dry else "gpu", "total_s": int(total), "sections": rows}
for name in ("overhead.json", "reference.json", "levers.json"):
    p = outdir / name
    if p.is_file():
        try:
            doc[name.removesuffix(".json")] = json.loads(p.read_text())
        except json.JSONDecodeError:
            doc[name.removesuffix(".json")] = "unreadable"
(outdir / "gpu_check.json").write_text(json.dumps(doc, indent=1))
md = [f"# gpu_check ({doc['mode']}, {total} s)", "", "| section | status | detail |",
      "|---|---|---|"]
md += [f"| {r['section']} | {r['status']} | {r['detail'].replace('|', '/')} |" for r in rows]
(outdir / "gpu_check.md").write_text("\n".join(md) + "\n")
print("\n".join(md))
EOF
echo "written: $OUTDIR/gpu_check.json $OUTDIR/gpu_check.md (total ${TOTAL}s)"
# Exit status: 0 only when every section passed (dry run: when the wiring works).
! cut -f2 "$RESULTS" | grep -qvx 'PASS'
