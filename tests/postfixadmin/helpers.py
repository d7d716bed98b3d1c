"""Constants and small helpers shared by the postfixadmin tests."""

import pathlib

import psycopg
import yaml

from tests.harness import salt_modules

REPO = pathlib.Path(__file__).resolve().parents[2]
ADMIN, ADMIN_PASSWORD = "pfa_admin", "adm1n-S3cret-Xq"
# Characters a pgsql_table(5) file and SQL quoting must both survive.
LOOKUP, LOOKUP_PASSWORD = "pfa_lookup", "l00k$up #pw'\"=x"
QUERIES = yaml.safe_load((REPO / "postfix" / "queries.yaml").read_text())


def run_sql(settings, query, params=()):
    """Run SQL as the given connection dict; return all rows (or None)."""
    with psycopg.connect(**settings) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else None


def load_module():
    """postfixadmin.* (_modules/postfixadmin*.py, merged as Salt's loader merges them)
    imported without Salt's loader (given `database`, its functions need no Salt context)."""
    return salt_modules.load_virtual("modules", "postfixadmin")
