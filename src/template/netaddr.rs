//! Basics of `ansible.utils.ipaddr` (netaddr): validate an address or CIDR
//! and take it apart (`address`, `network`, `netmask`, `prefix`, ...).

use super::filters::{err, items};
use super::pyfmt::py_str;
use minijinja::value::{Value, ValueKind};
use minijinja::Error;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, Copy)]
struct Net {
    addr: IpAddr,
    prefix: u32,
    /// written with a `/prefix`
    cidr: bool,
}

impl Net {
    fn bits(&self) -> u32 {
        if self.addr.is_ipv4() {
            32
        } else {
            128
        }
    }

    fn as_u128(&self) -> u128 {
        match self.addr {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        }
    }

    fn addr_of(&self, v: u128) -> IpAddr {
        match self.addr {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(v as u32)),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(v)),
        }
    }

    fn mask(&self) -> u128 {
        let bits = self.bits();
        let all = if bits == 32 {
            u128::from(u32::MAX)
        } else {
            u128::MAX
        };
        if self.prefix == 0 {
            0
        } else {
            all & !((1u128 << (bits - self.prefix)).wrapping_sub(1)) & all
        }
    }

    fn network(&self) -> IpAddr {
        self.addr_of(self.as_u128() & self.mask())
    }

    fn broadcast(&self) -> IpAddr {
        let bits = self.bits();
        let all = if bits == 32 {
            u128::from(u32::MAX)
        } else {
            u128::MAX
        };
        self.addr_of((self.as_u128() & self.mask()) | (!self.mask() & all))
    }

    fn size(&self) -> u128 {
        let host_bits = self.bits() - self.prefix;
        if host_bits >= 128 {
            u128::MAX
        } else {
            1u128 << host_bits
        }
    }
}

fn parse(s: &str) -> Option<Net> {
    let s = s.trim();
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: IpAddr = a.parse().ok()?;
    let bits = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match p {
        None => bits,
        Some(p) => match p.parse::<u32>() {
            Ok(n) if n <= bits => n,
            Ok(_) => return None,
            Err(_) => {
                // a netmask (v4)
                let m: Ipv4Addr = p.parse().ok()?;
                let m = u32::from(m);
                if m.leading_ones() + m.trailing_zeros() != 32 {
                    return None;
                }
                m.leading_ones()
            }
        },
    };
    Some(Net {
        addr,
        prefix,
        cidr: p.is_some(),
    })
}

fn query(net: &Net, q: Option<&Value>) -> Result<Value, Error> {
    let text = |a: IpAddr| Value::from(a.to_string());
    let Some(q) = q else {
        return Ok(Value::from(if net.cidr {
            format!("{}/{}", net.addr, net.prefix)
        } else {
            net.addr.to_string()
        }));
    };
    if let Some(n) = q.as_i64() {
        // the n-th address of the network
        let size = net.size() as i128;
        let idx = if n < 0 {
            size + i128::from(n)
        } else {
            i128::from(n)
        };
        if idx < 0 || idx >= size {
            return Ok(Value::from(false));
        }
        let a = net.addr_of((net.as_u128() & net.mask()) + idx as u128);
        return Ok(Value::from(format!("{a}/{}", net.prefix)));
    }
    let q = py_str(q)?;
    let is_net = net.cidr && net.prefix < net.bits() && net.as_u128() & !net.mask() == 0;
    Ok(match q.as_str() {
        "" => query(net, None)?,
        "address" | "ip" => {
            if is_net && net.prefix < net.bits() - 1 {
                Value::from(false)
            } else {
                text(net.addr)
            }
        }
        "host" => Value::from(format!("{}/{}", net.addr, net.bits())),
        "address/prefix" | "host/prefix" | "cidr_host" => {
            Value::from(format!("{}/{}", net.addr, net.prefix))
        }
        "network" => text(net.network()),
        "net" | "subnet" | "cidr" => Value::from(format!("{}/{}", net.network(), net.prefix)),
        "netmask" => text(net.addr_of(net.mask())),
        "hostmask" => {
            let bits = net.bits();
            let all = if bits == 32 {
                u128::from(u32::MAX)
            } else {
                u128::MAX
            };
            text(net.addr_of(!net.mask() & all))
        }
        "prefix" => Value::from(net.prefix),
        "broadcast" => {
            if net.addr.is_ipv4() && net.prefix < 31 {
                text(net.broadcast())
            } else {
                Value::from(())
            }
        }
        "size" => Value::from(net.size()),
        "version" => Value::from(if net.addr.is_ipv4() { 4 } else { 6 }),
        "type" => Value::from(if is_net { "network" } else { "address" }),
        "private" => match net.addr {
            IpAddr::V4(a) if a.is_private() => query(net, None)?,
            IpAddr::V6(a) if (a.segments()[0] & 0xfe00) == 0xfc00 => query(net, None)?,
            _ => Value::from(false),
        },
        "public" => match net.addr {
            IpAddr::V4(a)
                if !(a.is_private()
                    || a.is_loopback()
                    || a.is_link_local()
                    || a.is_multicast()
                    || a.is_broadcast()
                    || a.is_unspecified()) =>
            {
                query(net, None)?
            }
            IpAddr::V6(a) if !(a.is_loopback() || a.is_multicast() || a.is_unspecified()) => {
                query(net, None)?
            }
            _ => Value::from(false),
        },
        "loopback" => {
            if net.addr.is_loopback() {
                query(net, None)?
            } else {
                Value::from(false)
            }
        }
        "ipv4" => {
            if net.addr.is_ipv4() {
                query(net, None)?
            } else {
                Value::from(false)
            }
        }
        "ipv6" => {
            if net.addr.is_ipv6() {
                query(net, None)?
            } else {
                Value::from(false)
            }
        }
        "wrap" | "ipwrap" => match net.addr {
            IpAddr::V6(_) => Value::from(if net.cidr {
                format!("[{}]/{}", net.addr, net.prefix)
            } else {
                format!("[{}]", net.addr)
            }),
            _ => query(net, None)?,
        },
        other => return Err(err(format!("ipaddr: unknown filter type: {other}"))),
    })
}

fn one(name: &str, v: &Value, q: Option<&Value>) -> Result<Value, Error> {
    let s = match v.kind() {
        ValueKind::String => v.as_str().unwrap_or_default().to_string(),
        ValueKind::Number if v.is_integer() => {
            let n = v.as_i64().unwrap_or(-1);
            if !(0..=i64::from(u32::MAX)).contains(&n) {
                return Ok(Value::from(false));
            }
            Ipv4Addr::from(n as u32).to_string()
        }
        _ => return Ok(Value::from(false)),
    };
    let Some(net) = parse(&s) else {
        if name == "ipwrap" {
            return Ok(v.clone());
        }
        return Ok(Value::from(false));
    };
    match name {
        "ipv4" if !net.addr.is_ipv4() => return Ok(Value::from(false)),
        "ipv6" if !net.addr.is_ipv6() => return Ok(Value::from(false)),
        "ipwrap" => return query(&net, Some(&Value::from("wrap"))),
        _ => {}
    }
    query(&net, q)
}

/// `ipaddr`, `ipv4`, `ipv6`, `ipwrap`: a value or each item of a list.
pub(crate) fn filter(name: &str, v: &Value, q: Option<&Value>) -> Result<Value, Error> {
    if matches!(v.kind(), ValueKind::Seq | ValueKind::Iterable) {
        let mut out = Vec::new();
        for item in items(v)? {
            let r = one(name, &item, q)?;
            if (r.kind() != ValueKind::Bool || r.is_true()) && !r.is_none() {
                out.push(r);
            }
        }
        return Ok(Value::from(out));
    }
    one(name, v, q)
}

/// The tests of ansible.utils: `ip` (alias `ipaddr`), `ipv4`, `ipv6` hold for an address or a
/// network as Python's `ipaddress.ip_network` (strict) takes it: `10.0.0.0/8` yes,
/// `10.1.1.1/8` no (host bits set); `ip_address`, `ipv4_address`, `ipv6_address` for a bare
/// address only. Anything else (text, numbers, lists) is false.
pub(crate) fn test(name: &str, v: &Value) -> bool {
    let Some(s) = v.as_str() else {
        return false;
    };
    let Some(net) = parse(s) else {
        return false;
    };
    if net.cidr && net.network() != net.addr {
        return false;
    }
    let (version, address_only) = match name {
        "ip" | "ipaddr" => (None, false),
        "ipv4" => (Some(4), false),
        "ipv6" => (Some(6), false),
        "ip_address" => (None, true),
        "ipv4_address" => (Some(4), true),
        "ipv6_address" => (Some(6), true),
        _ => return false,
    };
    if address_only && net.cidr {
        return false;
    }
    match version {
        Some(4) => net.addr.is_ipv4(),
        Some(_) => net.addr.is_ipv6(),
        None => true,
    }
}
