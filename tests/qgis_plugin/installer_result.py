"""Run inside QGIS (headless, a GUI application): the installer dialog over a package index that
refuses connections. pip's thread ends a moment before its queued result reaches the dialog; in that
moment the dialog must still count as busy (Close disabled, ``running()``), and then show pip's failure
as one line. Prints a JSON report."""
import json
import time

from qgis.core import QgsApplication
from qgis.PyQt.QtWidgets import QLabel, QPushButton

app = QgsApplication([], True)
app.initQgis()
from landcover_plugin.qgis_plugin import dependencies_ui  # noqa: E402

dialog = dependencies_ui.InstallDialog()
dialog.show()
status, close = dialog.findChild(QLabel, "install_status"), dialog.findChild(QPushButton, "close")
dialog.findChild(QPushButton, "install").click()
report = {"after_click": {"running": dialog.running(), "status": status.text()}}
dialog.thread.wait(120_000)  # pip has ended; its result is queued, not yet shown
report["thread_ended"] = {"thread_running": dialog.thread.isRunning(), "running": dialog.running(),
                          "status": status.text(), "close_enabled": close.isEnabled()}
deadline = time.monotonic() + 30
while dialog.running() and time.monotonic() < deadline:
    app.processEvents()
    time.sleep(0.01)
report["shown"] = {"running": dialog.running(), "status": status.text(), "close_enabled": close.isEnabled(),
                   "private_dir_exists": dependencies_ui.private_dir().exists()}
dialog.close()
del dialog
print(json.dumps(report))
app.exitQgis()
