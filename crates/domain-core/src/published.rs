//! Records as a customer enters them at a DNS provider: type, host, full name, value,
//! and the value cut into the ≤255-octet character-strings a TXT record holds.

use crate::{RecordSet, Zone};

/// One character-string of a TXT record holds at most 255 octets (RFC 1035 §3.3).
pub const MAX_TXT_STRING: usize = 255;

/// A record to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedRecord {
    /// Always `TXT` today.
    pub record_type: &'static str,
    /// Relative to `zone`: `@` for the zone's own name, e.g. `s1._domainkey.mail` for
    /// `s1._domainkey.mail.example.com` in the zone `example.com`.
    pub host: String,
    /// The zone `host` is relative to (A-labels): where the customer publishes it.
    pub zone: String,
    /// Fully-qualified name, e.g. `s1._domainkey.example.com`.
    pub name: String,
    /// The TTL to publish it with, in seconds.
    pub ttl: u32,
    /// The whole TXT value, as one string.
    pub value: String,
    /// `value` in ≤255-octet pieces, for providers that want them separately.
    pub strings: Vec<String>,
}

impl RecordSet {
    /// The three records as a typed list, in the seed's order, with hosts relative
    /// to `zone` and `ttl` seconds to live.
    #[must_use]
    pub fn published(
        &self,
        domain: &crate::DomainName,
        zone: &Zone,
        ttl: u32,
    ) -> Vec<PublishedRecord> {
        let apex = domain.as_ascii();
        let record = |name: String, value: &str| PublishedRecord {
            record_type: "TXT",
            host: zone.host(&name),
            zone: zone.name().as_ascii().to_owned(),
            name,
            ttl,
            value: value.to_owned(),
            strings: split_txt(value),
        };
        vec![
            record(apex.to_owned(), &self.spf),
            record(self.dkim_name.clone(), &self.dkim_value),
            record(format!("_dmarc.{apex}"), &self.dmarc),
        ]
    }
}

/// Cuts `value` into pieces of at most [`MAX_TXT_STRING`] octets, never inside a
/// UTF-8 character.
#[must_use]
pub fn split_txt(value: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = value;
    while !rest.is_empty() {
        let mut end = rest.len().min(MAX_TXT_STRING);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        pieces.push(rest[..end].to_owned());
        rest = &rest[end..];
    }
    if pieces.is_empty() {
        pieces.push(String::new());
    }
    pieces
}

/// The default TTL of a record to publish: an hour, what DNS providers default to
/// (see [`RecordPolicy::with_ttl`](crate::RecordPolicy::with_ttl)).
pub const ZONE_TTL: u32 = 3600;

/// `records` as BIND zone-file lines (RFC 1035 §5 master file format): one line a
/// record, absolute names, each record's TTL, `IN TXT`, each value as its quoted
/// ≤255-octet character-strings with `"` and `\` escaped. The comment at the top
/// names the zone the records belong in (that of the first record). Pasted into a
/// zone with an SOA, it is what `named-checkzone` loads.
#[must_use]
pub fn zone_lines(domain: &crate::DomainName, records: &[PublishedRecord]) -> String {
    let mut out = format!("; Records to publish for {domain} (domain-api)\n");
    if let Some(first) = records.first() {
        out.push_str(&format!("; in the zone {}\n", first.zone));
    }
    for record in records {
        out.push_str(&record.name);
        out.push_str(&format!(". {} IN {}", record.ttl, record.record_type));
        for piece in &record.strings {
            out.push_str(" \"");
            for c in piece.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DomainName, RecordPolicy, Selector};

    fn records(domain: &str, key: &str) -> Vec<PublishedRecord> {
        let policy = RecordPolicy::new(
            vec!["51.79.43.241".parse().unwrap()],
            &["inbound.sendtrim.com".into()],
        )
        .unwrap();
        let domain = DomainName::parse(domain).unwrap();
        RecordSet::render(&policy, &domain, &Selector::new("s1").unwrap(), key).published(
            &domain,
            &Zone::of(&domain, Some(&domain)),
            ZONE_TTL,
        )
    }

    #[test]
    fn names_hosts_relative_to_the_zone() {
        let policy = RecordPolicy::new(
            vec!["51.79.43.241".parse().unwrap()],
            &["inbound.sendtrim.com".into()],
        )
        .unwrap();
        let domain = DomainName::parse("mail.gworkspace.example").unwrap();
        let zone = Zone::of(
            &domain,
            DomainName::parse("gworkspace.example").ok().as_ref(),
        );
        let list = RecordSet::render(&policy, &domain, &Selector::new("s1").unwrap(), "K")
            .published(&domain, &zone, 300);
        let hosts: Vec<_> = list
            .iter()
            .map(|r| (r.host.as_str(), r.zone.as_str(), r.ttl))
            .collect();
        assert_eq!(
            hosts,
            [
                ("mail", "gworkspace.example", 300),
                ("s1._domainkey.mail", "gworkspace.example", 300),
                ("_dmarc.mail", "gworkspace.example", 300),
            ]
        );
        let zone_file = zone_lines(&domain, &list);
        assert!(
            zone_file.contains("; in the zone gworkspace.example\n"),
            "{zone_file}"
        );
        assert!(
            zone_file.contains("\nmail.gworkspace.example. 300 IN TXT \"v=spf1"),
            "{zone_file}"
        );
    }

    #[test]
    fn names_hosts_relative_to_the_sender_domain_when_it_is_its_own_zone() {
        let list = records("mail.example.com", "K");
        let hosts: Vec<_> = list
            .iter()
            .map(|r| (r.host.as_str(), r.name.as_str()))
            .collect();
        assert_eq!(
            hosts,
            [
                ("@", "mail.example.com"),
                ("s1._domainkey", "s1._domainkey.mail.example.com"),
                ("_dmarc", "_dmarc.mail.example.com"),
            ]
        );
        assert!(list.iter().all(|r| r.record_type == "TXT"));
    }

    #[test]
    fn splits_a_long_dkim_value_into_255_octet_strings() {
        let key = format!("MIIBIjANBgkqhki{}", "A".repeat(377));
        let dkim = &records("example.com", &key)[1];
        assert_eq!(dkim.strings.len(), 2);
        assert_eq!(dkim.strings[0].len(), 255);
        assert_eq!(dkim.strings.concat(), dkim.value);
    }

    #[test]
    fn never_splits_inside_a_character() {
        let value = "é".repeat(200);
        let pieces = split_txt(&value);
        assert!(pieces.iter().all(|p| p.len() <= MAX_TXT_STRING));
        assert_eq!(pieces.concat(), value);
    }

    #[test]
    fn zone_lines_quote_each_piece_of_a_long_value_and_escape_quotes() {
        let key = "K".repeat(400);
        let domain = DomainName::parse("example.com").unwrap();
        let mut list = records("example.com", &key);
        list[2].value = r#"v=DMARC1; p=none; x="q\s""#.to_owned();
        list[2].strings = split_txt(&list[2].value);
        let zone = zone_lines(&domain, &list);
        let lines: Vec<&str> = zone.lines().collect();
        assert_eq!(
            lines[0],
            "; Records to publish for example.com (domain-api)"
        );
        assert_eq!(lines[1], "; in the zone example.com");
        let lines = &lines[1..];
        assert_eq!(
            lines[1],
            "example.com. 3600 IN TXT \"v=spf1 ip4:51.79.43.241 -all\""
        );
        let dkim = format!("v=DKIM1; k=rsa; p={key}");
        assert_eq!(
            lines[2],
            format!(
                "s1._domainkey.example.com. 3600 IN TXT \"{}\" \"{}\"",
                &dkim[..255],
                &dkim[255..]
            )
        );
        assert_eq!(
            lines[3],
            r#"_dmarc.example.com. 3600 IN TXT "v=DMARC1; p=none; x=\"q\\s\"""#
        );
    }
}
