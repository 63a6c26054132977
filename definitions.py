"""The one Dagster `Definitions` for Crucible: assets, checks, resources, jobs, schedules and sensors.

Stage logic lives in assets/ and resources/; this module only assembles them.
"""

import dagster as dg

from resources.sandbox import Sandbox

defs = dg.Definitions(
    resources={
        "sandbox": Sandbox(
            backend=dg.EnvVar("CRUCIBLE_SANDBOX_BACKEND").get_value("bwrap"),
            workers=int(dg.EnvVar("CRUCIBLE_SANDBOX_WORKERS").get_value("2")),
        ),
    },
)
