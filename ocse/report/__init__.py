"""The external assessment report (HTML and PDF) under the exports' disclosure control."""
