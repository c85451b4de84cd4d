"""Publications that leave the platform: research exports (and, through `ocse.report`, the
assessment report), all under disclosure control (`disclosure.py`)."""
