"""Self-contained HTML reports (``Report``) and the ``report.html`` builders of the long commands.

Layer: above the capabilities (it reads their output folders), beside the CLI and the viewer.
"""

from physforge.report.builders import (REPORT_FILE, asset_eval_report, asset_report, dataset_report, dpo_report,
                                       index_report, reason_eval_report, robot_eval_report)
from physforge.report.html import Report, command_line, environment

__all__ = ["Report", "command_line", "environment", "REPORT_FILE", "asset_eval_report", "asset_report",
           "dataset_report", "dpo_report", "index_report", "reason_eval_report", "robot_eval_report"]
