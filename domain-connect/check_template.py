"""Checks the Domain Connect template(s) in this folder against the Templates
repository's JSON schema (template.schema, vendored) and the repository's binding
template rules (its README, "Template Quality Guidelines", and the dc-template-linter
checks they name). Run by scripts/ci-domain-connect.sh with a pinned jsonschema.

Then proves the check can fail: each known-bad variant of the template must be refused.
"""

import copy
import json
import pathlib
import re
import sys

import jsonschema

HERE = pathlib.Path(__file__).resolve().parent
VARIABLE = re.compile(r"%([A-Za-z0-9_-]+)%")


def problems(template, file_name):
    """Every way `template` (parsed JSON) breaks the schema or the rules."""
    found = []
    schema = json.loads((HERE / "template.schema").read_text())
    validator = jsonschema.Draft7Validator(schema)
    found += [f"schema: {e.message}" for e in validator.iter_errors(template)]
    if found:
        return found
    # File name: providerId.serviceId.json
    expected = f"{template['providerId']}.{template['serviceId']}.json"
    if file_name != expected:
        found.append(f"file name {file_name} is not {expected}")
    for key in ("providerId", "serviceId"):
        if not re.fullmatch(r"[A-Za-z0-9._-]+", template[key]):
            found.append(f"{key} has characters other than letters, digits, . _ - (DCTL1002)")
    # Rules 1 and 2: signed, not warnPhishing.
    if not template.get("syncPubKeyDomain"):
        found.append("syncPubKeyDomain is not set (rule 1, DCTL1029)")
    if template.get("warnPhishing"):
        found.append("warnPhishing set with syncPubKeyDomain (rule 2, DCTL1028)")
    # Rule 3: redirect_uri is used (the Setup page), so syncRedirectDomain.
    if not template.get("syncRedirectDomain"):
        found.append("syncRedirectDomain is not set (rule 3)")
    for n, record in enumerate(template["records"], 1):
        where = f"record {n} ({record.get('type')} {record.get('host')!r})"
        kind = record["type"]
        host = record.get("host", "")
        if kind not in ("A", "AAAA", "CNAME", "NS", "TXT", "MX", "SRV", "SPFM"):
            found.append(f"{where}: type outside the core set (DCTL1016)")
        if kind != "SRV" and host == "":
            found.append(f"{where}: empty host (DCTL1013)")
        # Rule 4: SPF only as SPFM.
        if kind == "TXT" and "v=spf1" in record.get("data", "").lower():
            found.append(f"{where}: SPF as TXT; use SPFM (rule 4, DCTL1014)")
        if kind == "SPFM":
            rules = record["spfRules"].strip().lower()
            if not rules or rules.startswith("v=spf1") or rules.endswith("all"):
                found.append(f"{where}: spfRules must hold the mechanisms only (DCTL1017)")
        # Rule 5: DMARC unique by prefix.
        if kind == "TXT" and record.get("data", "").startswith("v=DMARC1"):
            if record.get("txtConflictMatchingMode") != "Prefix":
                found.append(f"{where}: DMARC without txtConflictMatchingMode Prefix (rule 5)")
            # Rule 10: the customer may change their DMARC policy.
            if record.get("essential") != "OnApply":
                found.append(f"{where}: DMARC without essential OnApply (rule 10)")
        if record.get("txtConflictMatchingMode") == "Prefix" and not record.get(
            "txtConflictMatchingPrefix"
        ):
            found.append(f"{where}: Prefix mode without a prefix (DCTL1013)")
        # Rules 7 and 9: no bare variable host label, never %host%.
        for label in host.split("."):
            if VARIABLE.fullmatch(label) and host == label:
                found.append(f"{where}: a bare variable as the host (rule 7)")
        if "%host%" in host.lower():
            found.append(f"{where}: %host% in host (rule 9, DCTL1024)")
        # Never a variable where the spec forbids one.
        for key in ("groupId", "txtConflictMatchingPrefix", "type"):
            if VARIABLE.search(str(record.get(key, ""))):
                found.append(f"{where}: variable in {key} (DCTL1009)")
        for key in ("ttl", "priority"):
            value = record.get(key)
            if isinstance(value, int) and not 0 <= value <= 2**31 - 1:
                found.append(f"{where}: {key} out of range (DCTL1000/DCTL1015)")
    return found


def main():
    templates = sorted(HERE.glob("*.json"))
    if not templates:
        print("no template found", file=sys.stderr)
        return 1
    failed = False
    for path in templates:
        template = json.loads(path.read_text())
        found = problems(template, path.name)
        for problem in found:
            print(f"{path.name}: {problem}", file=sys.stderr)
        failed |= bool(found)
        # The check refuses what it should.
        bad = []
        t = copy.deepcopy(template)
        del t["records"]
        bad.append(("no records", t))
        t = copy.deepcopy(template)
        t["records"].append({"type": "TXT", "host": "@", "data": "v=spf1 -all", "ttl": 3600})
        bad.append(("SPF as TXT", t))
        t = copy.deepcopy(template)
        t.pop("syncPubKeyDomain")
        bad.append(("unsigned", t))
        t = copy.deepcopy(template)
        t["records"][0]["groupId"] = "%group%"
        bad.append(("variable group", t))
        t = copy.deepcopy(template)
        t["records"].append({"type": "MX", "host": "@", "pointsTo": "x", "priority": "ten"})
        bad.append(("MX without ttl", t))
        for name, variant in bad:
            if not problems(variant, path.name):
                print(f"{path.name}: the check accepts a bad variant ({name})", file=sys.stderr)
                failed = True
        if not found:
            print(f"{path.name}: valid ({len(template['records'])} records)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
