# Landcover — developer and user entry points. See README.md.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := qgis python3-qgis qgis-providers python3-rasterio python3-gdal gdal-bin python3-matplotlib pyqt5-dev-tools xvfb xauth zip \
                qgis-server-bin qgis-server-wms
STAMP := $(VENV)/.setup-stamp
export QT_QPA_PLATFORM ?= offscreen

.PHONY: setup demo test test-fast check package resources clean train-flair train-dubai train-dubai-grey screenshots bench live-bench change-demo change-bench finetune-bench finetune-shots

setup: $(STAMP) landcover_plugin/resources.py

# apt packages are installed only when one is missing, so a second `make setup` is quick.
$(STAMP): requirements.txt requirements-test.txt constraints.txt pyproject.toml
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing $$missing"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi
	test -x $(PY) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q -c constraints.txt -r requirements.txt
	$(PY) -m pip install -q -c constraints.txt -r requirements-test.txt
	$(PY) -m pip install -q -c constraints.txt --no-deps -e .
	touch $(STAMP)

landcover_plugin/resources.py: resources.qrc $(wildcard landcover_plugin/icons/*.svg)
	pyrcc5 -o $@ resources.qrc

resources: landcover_plugin/resources.py

demo: setup
	mkdir -p out
	$(VENV)/bin/landcover classify landcover_plugin/sample/flair_sample.tif out/flair_sample_classes.tif \
	  --confidence out/flair_sample_confidence.tif
	$(PY) -m landcover_plugin.preview landcover_plugin/sample/flair_sample.tif out/flair_sample_classes.tif out/flair_sample_preview.png
	@echo "Demo outputs in out/: flair_sample_classes.tif (+ .qml), flair_sample_confidence.tif, flair_sample_preview.png"

test: setup
	$(PY) -m pytest -q tests

# The unit tests: no real data (../shared), no QGIS (qgis_process or window), nothing slow; under 3 minutes on 2 cores.
test-fast: setup
	$(PY) -m pytest -q -m "not shared_data and not qgis and not desktop and not slow" tests

# Lint (ruff), types (mypy: strict on engine/ and model/) and the declared minimum Python (vermin: 3.9).
check: setup
	$(VENV)/bin/ruff check landcover_plugin tests bench docs
	$(VENV)/bin/mypy landcover_plugin
	$(VENV)/bin/vermin --no-tips --violations --eval-annotations -t=3.9- landcover_plugin bench

# A zip for QGIS' Plugin Manager ("Install from ZIP") and the official plugin repository (25 MB at most):
# the plugin folder with metadata.txt, LICENSE, compiled resources and the default model (symlinks
# resolved), without caches. The other models are listed in models/remote.json (size, SHA-256, URL =
# MODELS_URL + file name) and fetched on first use; dist/models/ holds them and SHA256SUMS, to upload
# to MODELS_URL with the release.
PACKAGE_MODELS ?= flair-rgb
MODELS_URL ?=
ZIP_LIMIT := 25000000
package: setup
	rm -rf build/package dist/landcover_plugin.zip dist/models
	mkdir -p build/package dist/models
	cp -rL landcover_plugin build/package/landcover_plugin
	mkdir -p build/package/landcover_plugin/models
	cp $(PACKAGE_MODELS:%=models/%.onnx) models/*.md build/package/landcover_plugin/models/
	cp README.md LICENSE build/package/landcover_plugin/
	remote="$(filter-out $(PACKAGE_MODELS:%=models/%.onnx),$(wildcard models/*.onnx))"; \
	  cp $$remote dist/models/ && \
	  $(PY) -m landcover_plugin.model.remote build/package/landcover_plugin/models/remote.json "$(MODELS_URL)" $$remote > dist/models/SHA256SUMS
	find build/package -name __pycache__ -prune -exec rm -rf {} +
	cd build/package && zip -qr9 ../../dist/landcover_plugin.zip landcover_plugin
	@size=$$(stat -c %s dist/landcover_plugin.zip); echo "Wrote dist/landcover_plugin.zip ($$size bytes; the plugin repository takes $(ZIP_LIMIT))"; \
	  test $$size -le $(ZIP_LIMIT) || { echo "dist/landcover_plugin.zip is over the plugin repository's limit"; exit 1; }
	@if [ -z "$(MODELS_URL)" ]; then echo "Note: MODELS_URL is empty: $$(ls dist/models/*.onnx | xargs -n1 basename | tr '\n' ' ')can only be added by hand (or with LANDCOVER_MODELS_URL at run time)"; fi

# Speed and memory: model-only vs end-to-end MP/s, ratio, per-tile baseline, peak RSS (21 MP and 84 MP);
# then peak RSS on a 100,000 × 1,024 and a 1,024 × 100,000 px raster (fails if either reaches 1 GB).
bench: setup
	mkdir -p out
	$(PY) bench/classify_speed.py --json out/bench.json
	$(PY) bench/memory_width.py --json out/memory_width.json

# The second training stage of every bundled model (models/*.md): from the stage-1 model, scale jitter and detail loss.
STAGE2 = --steps 600 --set eval_every=200 --set lr=0.0003 --set schedule=cosine --set 'scale_jitter=[0.5, 2]' \
  --set scale_jitter_fraction=0.5 --set 'degrade=[1, 2.5]' --set degrade_fraction=0.3

# Reproduces models/flair-rgb.onnx (fixed seed, CPU, two stages); see models/flair-rgb.md.
train-flair: setup
	$(VENV)/bin/landcover train --config models/flair-rgb.train.json --output runs/flair-rgb-stage1.onnx --run-dir runs/flair-rgb-stage1
	$(VENV)/bin/landcover train --config models/flair-rgb.train.json --set init_model=runs/flair-rgb-stage1.onnx $(STAGE2) --set version='"1.1.1"' \
	  --output models/flair-rgb.onnx --run-dir runs/flair-rgb

# The real QGIS desktop under Xvfb, with the demo's class map beside its input: docs/qgis_classified.png
screenshots: demo
	rm -rf build/qgis-profile && mkdir -p build/qgis-profile
	LANDCOVER_INPUT=$(CURDIR)/landcover_plugin/sample/flair_sample.tif LANDCOVER_CLASSES=$(CURDIR)/out/flair_sample_classes.tif \
	  LANDCOVER_SCREENSHOT=$(CURDIR)/docs/qgis_classified.png QT_QPA_PLATFORM=xcb \
	  timeout 180 xvfb-run -a -s "-screen 0 1600x1000x24" qgis --profiles-path build/qgis-profile --nologo \
	  --noversioncheck --code docs/screenshot_qgis.py
	@ls -la docs/qgis_classified.png
	QT_QPA_PLATFORM=xcb $(PY) bench/live_view.py --shots docs --json out/live_view.json

# Land-cover change on a real pair (FLAIR Z6 with a block of Z2 woodland pasted in): CLI outputs in
# out/change_demo/, the QGIS window with the styled change layer and the report's heat map in docs/.
change-demo: setup
	$(PY) bench/change_threshold.py --demo out/change_demo
	cd out/change_demo && ../../$(VENV)/bin/landcover change before.tif after.tif change.tif --transitions transitions.csv \
	  --report report.md --to-class-band
	cp out/change_demo/report.png docs/change_heatmap.png
	rm -rf build/qgis-profile-change && mkdir -p build/qgis-profile-change
	LANDCOVER_BEFORE=$(CURDIR)/out/change_demo/before.tif LANDCOVER_AFTER=$(CURDIR)/out/change_demo/after.tif \
	  LANDCOVER_CHANGE=$(CURDIR)/out/change_demo/change.tif LANDCOVER_SCREENSHOT=$(CURDIR)/docs/change_qgis.png QT_QPA_PLATFORM=xcb \
	  timeout 240 xvfb-run -a -s "-screen 0 1600x1000x24" qgis --profiles-path build/qgis-profile-change --nologo \
	  --noversioncheck --code docs/screenshot_change.py

# Adapt a model: dubai-rgb fine-tuned on squares drawn in one half of a FLAIR Z4 window, scored on the other half
# (README, docs/finetune.md), with the default budget; and the loop in the QGIS desktop with its screenshots in docs/.
finetune-bench: setup
	mkdir -p out
	$(PY) bench/finetune_gain.py --json out/finetune_gain.json

finetune-shots: setup
	LANDCOVER_DOCS_SHOTS=1 LANDCOVER_FINETUNE_MINUTES=1 $(PY) -m pytest -q tests/qgis_plugin/test_desktop_finetune.py \
	  --basetemp /tmp/landcover-finetune-shots -p no:cacheprovider

# --min-confidence curve (no change between shifted tilings), detection of pasted blocks, Dubai grey vs RGB (README).
change-bench: setup
	mkdir -p out
	$(PY) bench/change_threshold.py --json out/change_bench.json

# Live layer: seconds from a view change to the class layer on a 1366×768 canvas (real QGIS desktop).
live-bench: setup
	QT_QPA_PLATFORM=xcb $(PY) bench/live_view.py --json out/live_view.json

# Reproduces models/dubai-rgb.onnx (fixed seed, CPU, two stages); see models/dubai-rgb.md.
train-dubai: setup
	$(VENV)/bin/landcover train --config models/dubai-rgb.train.json --output runs/dubai-rgb-stage1.onnx --run-dir runs/dubai-rgb-stage1
	$(VENV)/bin/landcover train --config models/dubai-rgb.train.json --set init_model=runs/dubai-rgb-stage1/best.pt $(STAGE2) --set version='"1.1"' \
	  --output models/dubai-rgb.onnx --run-dir runs/dubai-rgb

# Reproduces models/dubai-grey.onnx: the same data as greyscale (luma), 1-band input, two stages; see models/dubai-grey.md.
train-dubai-grey: setup
	$(VENV)/bin/landcover train --config models/dubai-grey.train.json --output runs/dubai-grey-stage1.onnx --run-dir runs/dubai-grey-stage1
	$(VENV)/bin/landcover train --config models/dubai-grey.train.json --set init_model=runs/dubai-grey-stage1/best.pt $(STAGE2) --set version='"1.1"' \
	  --output models/dubai-grey.onnx --run-dir runs/dubai-grey

clean:
	rm -rf out dist build .pytest_cache
