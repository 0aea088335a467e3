#!/usr/bin/env bash
# Translations: extract every msgid, update the English catalog, compile it. Offline.
#
#   tools/i18n.sh           extract -> volunteer_market/translations/messages.pot,
#                           update (or create) translations/en/LC_MESSAGES/messages.po,
#                           compile messages.mo, list the msgids still untranslated
#   tools/i18n.sh --check   the same, but exit 1 if any English translation is missing
#                           or fuzzy (CI)
#
# Chinese is the source language: msgids are the Chinese strings wrapped in _() / _l()
# in Python and templates (zh_CN needs no catalog). After running, translate the new
# empty msgstr entries in en/LC_MESSAGES/messages.po and run the script again to
# compile. Set PYTHON to choose the interpreter (default: python, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-$(command -v python || command -v python3)}"
DIR=volunteer_market/translations
POT=$DIR/messages.pot
PO=$DIR/en/LC_MESSAGES/messages.po

mkdir -p "$DIR"

pybabel() { "$PYTHON" -m babel.messages.frontend "$@"; }

pybabel extract -F babel.cfg \
  -k _l -k lazy_gettext -k _n:1,2 -k lazy_ngettext:1,2 \
  --add-location=file --sort-output --width=100 \
  --project="Volunteer Market" --version=0.1.0 --copyright-holder="Volunteer Market" \
  -o "$POT" .

if [[ -f $PO ]]; then
  # No fuzzy matching: a guessed translation of a changed string is worse than none.
  pybabel update -i "$POT" -d "$DIR" -l en --no-fuzzy-matching --ignore-obsolete --width=100
else
  pybabel init -i "$POT" -d "$DIR" -l en --width=100
fi

pybabel compile -d "$DIR" --statistics

"$PYTHON" - "$PO" "${1:-}" <<'PY'
import sys

from babel.messages.pofile import read_po

path, mode = sys.argv[1], sys.argv[2]
with open(path, "rb") as fh:
    catalog = read_po(fh)
missing = [
    m.id
    for m in catalog
    if m.id and (m.fuzzy or not (all(m.string) if isinstance(m.id, tuple) else m.string))
]
for msgid in missing:
    print(f"untranslated: {msgid!r}", file=sys.stderr)
print(f"{path}: {sum(1 for m in catalog if m.id)} messages, {len(missing)} untranslated")
if missing and mode == "--check":
    sys.exit(1)
PY
