# Landcover — developer and user entry points. See README.md.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := qgis python3-qgis qgis-providers python3-rasterio python3-gdal python3-matplotlib pyqt5-dev-tools xvfb xauth zip
STAMP := $(VENV)/.setup-stamp
export QT_QPA_PLATFORM ?= offscreen

.PHONY: setup demo test package resources clean train-flair train-dubai train-dubai-grey screenshots bench live-bench

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

# A zip for QGIS' Plugin Manager ("Install from ZIP"): the plugin folder with metadata.txt, compiled
# resources and the bundled models (copied in, symlinks resolved), without caches.
package: setup
	rm -rf build/package dist/landcover_plugin.zip
	mkdir -p build/package dist
	cp -rL landcover_plugin build/package/landcover_plugin
	mkdir -p build/package/landcover_plugin/models
	cp models/*.onnx models/*.md build/package/landcover_plugin/models/
	cp README.md build/package/landcover_plugin/README.md
	find build/package -name __pycache__ -prune -exec rm -rf {} +
	cd build/package && zip -qr9 ../../dist/landcover_plugin.zip landcover_plugin
	@echo "Wrote dist/landcover_plugin.zip ($$(du -h dist/landcover_plugin.zip | cut -f1))"

# Speed and memory: model-only vs end-to-end MP/s, ratio, per-tile baseline, peak RSS (21 MP and 84 MP);
# then peak RSS on a 100,000 × 1,024 and a 1,024 × 100,000 px raster (fails if either reaches 1 GB).
bench: setup
	mkdir -p out
	$(PY) bench/classify_speed.py --json out/bench.json
	$(PY) bench/memory_width.py --json out/memory_width.json

# Reproduces models/flair-rgb.onnx (fixed seed, CPU); see models/flair-rgb.md.
train-flair: setup
	$(VENV)/bin/landcover train --config models/flair-rgb.train.json --output models/flair-rgb.onnx

# The real QGIS desktop under Xvfb, with the demo's class map beside its input: docs/qgis_classified.png
screenshots: demo
	rm -rf build/qgis-profile && mkdir -p build/qgis-profile
	LANDCOVER_INPUT=$(CURDIR)/landcover_plugin/sample/flair_sample.tif LANDCOVER_CLASSES=$(CURDIR)/out/flair_sample_classes.tif \
	  LANDCOVER_SCREENSHOT=$(CURDIR)/docs/qgis_classified.png QT_QPA_PLATFORM=xcb \
	  timeout 180 xvfb-run -a -s "-screen 0 1600x1000x24" qgis --profiles-path build/qgis-profile --nologo \
	  --noversioncheck --code docs/screenshot_qgis.py
	@ls -la docs/qgis_classified.png
	QT_QPA_PLATFORM=xcb $(PY) bench/live_view.py --shots docs --json out/live_view.json

# Live layer: seconds from a view change to the class layer on a 1366×768 canvas (real QGIS desktop).
live-bench: setup
	QT_QPA_PLATFORM=xcb $(PY) bench/live_view.py --json out/live_view.json

# Reproduces models/dubai-rgb.onnx (fixed seed, CPU); see models/dubai-rgb.md.
train-dubai: setup
	$(VENV)/bin/landcover train --config models/dubai-rgb.train.json --output models/dubai-rgb.onnx

# Reproduces models/dubai-grey.onnx: the same data as greyscale (luma), 1-band input; see models/dubai-grey.md.
train-dubai-grey: setup
	$(VENV)/bin/landcover train --config models/dubai-grey.train.json --output models/dubai-grey.onnx

clean:
	rm -rf out dist build .pytest_cache
