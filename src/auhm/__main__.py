from auhm.cli import app

app()
