#!/usr/bin/env python3
"""bench.py — the measuring half of bench/allpeers/run.sh (which starts and stops
every server). One client for every server: Postfix's smtp-source, a new
connection per message, 1 KiB bodies.

  bench.py w1    --rounds R --scale X --servers a,b,...   W1 every peer + CPU per message
  bench.py w8    --rounds R --scale X                     W8 relay A -> B (gomta, Postfix)
  bench.py w9    FILE.json ...                            summarise mtaload -open reports
  bench.py audit --servers a,b,...                        what each server fsyncs, and when

Every part appends its samples to RESULTS/allpeers-STAMP.jsonl and its table to
RESULTS/allpeers-STAMP.md (STAMP and RESULTS from the environment, set by run.sh).

Per sample: the server's whole process tree's CPU (utime+stime, and cutime+cstime
of children it reaped, from /proc/PID/stat, summed over the tree at the start and
at the end) divided by the messages delivered, and the kernel's share of it;
the host's UDP datagrams sent (/proc/net/snmp) over the sample: a DNS query
would show there (every server's resolv.conf points at 127.0.0.1).
"""
import json, os, re, sqlite3, statistics, subprocess, sys, time

RUN = os.environ['AP_BASE'] + '/run'
OUT = os.environ.get('RESULTS', '.')
STAMP = os.environ.get('STAMP', time.strftime('%Y%m%d-%H%M%S'))
SRC = '/usr/sbin/smtp-source'
DOMAIN, RDOMAIN = 'bench.test', 'relay.test'
CLK = os.sysconf('SC_CLK_TCK')
MAXS = float(os.environ.get('MAX_SAMPLE_S', 12))


def pidfile(path):
    return lambda: int(open(path).read().split()[0])


def maildir(fmt):
    """count(user): files in the Maildir's new/ and cur/ (fmt % user is the Maildir)."""
    def count(user):
        n = 0
        for sub in ('new', 'cur'):
            try:
                n += len(os.listdir(os.path.join(fmt % user, sub)))
            except FileNotFoundError:
                pass
        return n
    return count


def maddy_count(user):
    """maddy keeps its mailboxes in SQLite (storage.imapsql): count the user's rows."""
    db = sqlite3.connect('file:%s/maddy/state/imapsql.db?mode=ro' % RUN, uri=True, timeout=5)
    try:
        return db.execute('SELECT count(*) FROM msgs JOIN mboxes ON msgs.mboxId = mboxes.id '
                          'JOIN users ON mboxes.uid = users.id WHERE users.username = ?',
                          ('%s@%s' % (user, DOMAIN),)).fetchone()[0]
    finally:
        db.close()


SERVERS = {
    'gomta': dict(port=26025, pid=pidfile(RUN + '/gomta.pid'),
                  count=maildir(RUN + '/gomta/mx.bench.test/mail/%s@bench.test')),
    'postfix': dict(port=26525, pid=pidfile(RUN + '/postfix/spool/pid/master.pid'),
                    count=maildir(RUN + '/postfix/mail/%s')),
    'chasquid': dict(port=26625, pid=pidfile(RUN + '/chasquid.pid'), count=maildir(RUN + '/chasquid/mail/%s')),
    'maddy': dict(port=26725, pid=pidfile(RUN + '/maddy.pid'), count=maddy_count),
    'opensmtpd': dict(port=26825, pid=pidfile(RUN + '/opensmtpd.pid'), count=maildir(RUN + '/opensmtpd/mail/%s')),
    'exim': dict(port=26925, pid=pidfile(RUN + '/exim.pid'), count=maildir(RUN + '/exim/mail/%s')),
    'smtp-sink': dict(port=26999, pid=pidfile(RUN + '/smtp-sink.pid'), count=None),
}
RELAYS = {  # W8: smtp-source -> A (port), last message counted in B's Maildir
    'gomta': dict(port=27025, pids=[pidfile(RUN + '/gomta-a.pid'), pidfile(RUN + '/gomta-b.pid')],
                  count=maildir(RUN + '/gomta-b/mx-b.relay.test/mail/%s@relay.test')),
    'postfix': dict(port=27525, pids=[pidfile(RUN + '/postfix-a/spool/pid/master.pid'),
                                      pidfile(RUN + '/postfix-b/spool/pid/master.pid')],
                    count=maildir(RUN + '/postfix-b/mail/%s')),
}


def proc_table():
    kids, cpu = {}, {}
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            s = open('/proc/%s/stat' % d).read()
        except OSError:
            continue
        f = s[s.rindex(')') + 2:].split()
        kids.setdefault(int(f[1]), []).append(int(d))
        # utime stime cutime cstime (fields 14-17)
        cpu[int(d)] = (int(f[11]) + int(f[13]), int(f[12]) + int(f[14]))
    return kids, cpu


def tree_cpu(roots):
    """(user s, system s) of every process under roots, reaped children included."""
    kids, cpu = proc_table()
    u = s = 0
    todo = list(roots)
    while todo:
        p = todo.pop()
        cu, cs = cpu.get(p, (0, 0))
        u, s = u + cu, s + cs
        todo.extend(kids.get(p, []))
    return u / CLK, s / CLK


def udp_out():
    rows = [l.split() for l in open('/proc/net/snmp') if l.startswith('Udp:')]
    return int(rows[1][rows[0].index('OutDatagrams')])


def smtp_source(port, S, N, frm, to, extra=()):
    cmd = [SRC, '-s', str(S), '-m', str(N), '-l', '1024', '-f', frm, '-t', to] + list(extra) + ['127.0.0.1:%d' % port]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        return p.returncode, (p.stderr or '').strip()[-200:]
    except subprocess.TimeoutExpired:
        return 124, 'smtp-source timed out'


def wait_count(count, user, base, N, rc, limit=180):
    """Seconds (monotonic) when N new messages are in the mailbox, or None."""
    deadline, last, last_t = time.monotonic() + limit, -1, time.monotonic()
    while True:
        got = count(user) - base
        now = time.monotonic()
        if got >= N:
            return now, got
        if got != last:
            last, last_t = got, now
        if now > deadline or (rc != 0 and now - last_t > 3):
            return None, got
        time.sleep(0.005)


def measure(kind, name, port, pids, count, S, N, frm, user, dom):
    base = count(user) if count else 0
    os.sync()
    time.sleep(1.0)
    roots = [p() for p in pids]
    (u0, s0), udp0 = tree_cpu(roots), udp_out()
    t0 = time.monotonic()
    rc, err = smtp_source(port, S, N, frm, '%s@%s' % (user, dom))
    t1 = time.monotonic()
    t2, got = wait_count(count, user, base, N, rc) if count else (t1, N)
    (u1, s1), udp1 = tree_cpu(roots), udp_out()
    done = got if count else (N if rc == 0 else 0)
    cpu = (u1 - u0) + (s1 - s0)
    r = dict(part=kind, server=name, S=S, N=N, user=user, rc=rc, err=err,
             accepted=N / (t1 - t0) if rc == 0 else None,
             delivered=N / (t2 - t0) if (t2 and rc == 0) else None,
             in_mailbox=got, cpu_us_per_msg=cpu / done * 1e6 if done else None,
             kernel_share=(s1 - s0) / cpu if cpu > 0 else None,
             udp=udp1 - udp0, load=open('/proc/loadavg').read().split()[0], ts=time.strftime('%H:%M:%S'))
    with open('%s/allpeers-%s.jsonl' % (OUT, STAMP), 'a') as f:
        f.write(json.dumps(r) + '\n')
    fig = r['delivered'] if count else r['accepted']
    print('%s %-3s S=%-3d %-10s %-6s %8s msg/s  cpu %6s us/msg (kernel %s)  udp %d%s' % (
        r['ts'], kind, S, name, user, '%.0f' % fig if fig else 'fail',
        '%.0f' % r['cpu_us_per_msg'] if r['cpu_us_per_msg'] else '-',
        '%.0f%%' % (100 * r['kernel_share']) if r['kernel_share'] is not None else '-', r['udp'],
        '  rc=%d %s' % (rc, err) if rc else ''), flush=True)
    return r


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def cell(xs, f='%.0f'):
    xs = [x for x in xs if x is not None]
    if not xs:
        return 'n/a'
    return ('**' + f + '** (' + f + '–' + f + ')') % (statistics.median(xs), min(xs), max(xs))


def append_md(text):
    with open('%s/allpeers-%s.md' % (OUT, STAMP), 'a') as f:
        f.write(text + '\n')
    print(text, flush=True)


def arg(name, default):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def w1():
    rounds, scale = int(arg('--rounds', 3)), float(arg('--scale', 1))
    servers = [s for s in arg('--servers', ','.join(SERVERS)).split(',') if s]
    loads = [(int(a), max(1, int(int(b) * scale))) for a, b in
             (x.split(':') for x in arg('--loads', '1:300,20:2000,100:2000').split(','))]
    users, samples = {s: 0 for s in servers}, []
    for S, N in loads:
        ns = {}
        for name in servers:   # warm-up (not reported): every server once at this S
            srv = SERVERS[name]
            w = measure('w1-warm', name, srv['port'], [srv['pid']], srv['count'], S, max(1, N // 10),
                        'sender@client.test', 'warm', DOMAIN)
            # N is capped so that a sample of a slow server lasts about MAXS seconds at its
            # warm-up rate (the whole run must fit in its time budget); the table shows N.
            rate = (w['delivered'] if srv['count'] else w['accepted']) or 0
            ns[name] = N if rate * MAXS >= N else max(min(N, 50), int(rate * MAXS))
        for r in range(rounds):   # A B C ... within a round, the order rotated each round
            k = r % len(servers)
            for name in servers[k:] + servers[:k]:
                srv = SERVERS[name]
                users[name] += 1
                samples.append(measure('w1', name, srv['port'], [srv['pid']], srv['count'], S, ns[name],
                                       'sender@client.test', 'r%d' % users[name], DOMAIN))
    out = ['', '## W1: 1 KiB, a new connection per message, smtp-source (%d round(s), A B C … alternating)' % rounds, '',
           'Delivered msg/s = N / time until the N-th message is in the mailbox (smtp-sink: accepted msg/s). '
           'CPU = the server\'s whole process tree (utime+stime from /proc, reaped children included) per message. '
           'Cells: **median** (min–max).', '']
    for S, N in loads:
        ss = [s for s in samples if s['S'] == S]
        g = med([s['delivered'] for s in ss if s['server'] == 'gomta'])
        sink = med([s['accepted'] for s in ss if s['server'] == 'smtp-sink'])
        out += ['### S = %d sessions, N = %d' % (S, N), '',
                '| server | delivered msg/s | gomta / it | it / smtp-sink | server CPU µs/msg | kernel share | UDP datagrams | failed |',
                '|---|---|---|---|---|---|---|---|']
        for name in servers:
            xs = [s for s in ss if s['server'] == name]
            fig = [s['accepted'] if name == 'smtp-sink' else s['delivered'] for s in xs]
            m = med(fig)
            ratio = '%.2f×' % (g / m) if (g and m and name != 'gomta') else '–'
            frac = '%.2f' % (m / sink) if (m and sink and name != 'smtp-sink') else '–'
            fails = sum(1 for s, f in zip(xs, fig) if f is None)
            nn = sorted(set(s['N'] for s in xs))
            out.append('| %s | %s | %s | %s | %s | %s | %d | %d/%d |' % (
                name + ('' if nn == [N] else ' (N = %s)' % ','.join(map(str, nn))), cell(fig), ratio, frac, cell([s['cpu_us_per_msg'] for s in xs]),
                cell([100 * s['kernel_share'] if s['kernel_share'] is not None else None for s in xs], '%.0f%%'),
                sum(s['udp'] for s in xs), fails, len(xs)))
        out.append('')
    append_md('\n'.join(out))


def w8():
    rounds, scale = int(arg('--rounds', 3)), float(arg('--scale', 1))
    N, S = max(1, int(2000 * scale)), 20
    names, samples = list(RELAYS), []
    for name in names:
        rl = RELAYS[name]
        measure('w8-warm', name, rl['port'], rl['pids'], rl['count'], S, max(1, N // 10), 'bench@a.test', 'warm', RDOMAIN)
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            rl = RELAYS[name]
            samples.append(measure('w8', name, rl['port'], rl['pids'], rl['count'], S, N,
                                   'bench@a.test', 'r%d' % (r + 1), RDOMAIN))
    g = med([s['delivered'] for s in samples if s['server'] == 'gomta'])
    out = ['', '## W8 relay: smtp-source → A → B, %d sessions into A, 1 KiB, N = %d (%d round(s))' % (S, N, rounds), '',
           'msg/s until the N-th message is in B\'s Maildir; CPU = A\'s and B\'s process trees together, per message.', '',
           '| pair | msg/s into B | gomta / it | CPU µs/msg (A+B) | kernel share | UDP datagrams | failed |',
           '|---|---|---|---|---|---|---|']
    for name in names:
        xs = [s for s in samples if s['server'] == name]
        m = med([s['delivered'] for s in xs])
        out.append('| %s A → %s B | %s | %s | %s | %s | %d | %d/%d |' % (
            name, name, cell([s['delivered'] for s in xs]), '%.2f×' % (g / m) if (g and m and name != 'gomta') else '–',
            cell([s['cpu_us_per_msg'] for s in xs]),
            cell([100 * s['kernel_share'] if s['kernel_share'] is not None else None for s in xs], '%.0f%%'),
            sum(s['udp'] for s in xs), sum(1 for s in xs if s['delivered'] is None), len(xs)))
    append_md('\n'.join(out + ['']))


def w9():
    out = ['', '## W9 open loop: mtaload smtp -open (intended arrival rate in steps; latency from the intended send time)', '',
           '| server | max sustained msg/s (p99 < 100 ms, no errors) | step: rate → achieved, errors, p50 / p99 / max corrected ms, p99 service ms |',
           '|---|---|---|']
    for path in sys.argv[2:]:
        name = os.path.basename(path).rsplit('.', 1)[0].rsplit('-w9-', 1)[-1]
        try:
            rep = json.load(open(path))
        except (OSError, ValueError) as e:
            out.append('| %s | n/a | report unreadable: %s |' % (name, e))
            continue
        steps = []
        steps_in = rep.get('steps') or (rep.get('open_loop') or {}).get('steps') or []
        for st in steps_in:
            c, sv = st.get('corrected', {}), st.get('service', {})
            steps.append('%g → %.0f, %d err, %.1f / %.1f / %.1f, %.1f' % (
                st.get('rate', 0), st.get('achieved_rate', 0), st.get('errors', 0),
                c.get('p50', 0), c.get('p99', 0), c.get('max', 0), sv.get('p99', 0)))
        msr = rep.get('max_sustained_rate')
        out.append('| %s | %s | %s |' % (name, '**%g**' % msr if msr is not None else 'none', '; '.join(steps)))
        with open('%s/allpeers-%s.jsonl' % (OUT, STAMP), 'a') as f:
            f.write(json.dumps(dict(part='w9', server=name, max_sustained_rate=msr, steps=steps_in)) + '\n')
    append_md('\n'.join(out + ['']))


# ---------------------------------------------------------------- audit
SYNCS = ('fsync', 'fdatasync', 'syncfs', 'sync_file_range', 'msync', 'sync')
EV = re.compile(r'^(\d+)\s+(\d+):(\d+):(\d+\.\d+) (\w+)\((.*)$')


def generic(path):
    """A path with the per-message and per-user parts replaced, for grouping."""
    path = re.sub(r'/(r\d+|warm|w9|audit)(@bench\.test)?(?=/|$)', r'/<user>\2', path)
    if not path.endswith('/'):
        path = re.sub(r'/[^/]*\d[^/]*$', '/<file>', path)
    return path


def audit_one(name, msgs):
    srv = SERVERS[name]
    kids, _ = proc_table()
    pids, todo = [], [srv['pid']()]
    while todo:
        p = todo.pop(); pids.append(p); todo.extend(kids.get(p, []))
    trace = '%s/audit-%s.strace' % (RUN, name)
    st = subprocess.Popen(['strace', '-f', '-qq', '-tt', '-yy', '-s', '8', '-o', trace,
                           '-e', 'trace=' + ','.join(SYNCS + ('write', 'writev', 'sendto', 'sendmsg', 'connect'))]
                          + sum((['-p', str(p)] for p in pids), []), stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    base = srv['count']('audit')
    # one message a second, one session: each delivery is over before the next 354
    smtp_source(srv['port'], 1, msgs, 'sender@client.test', 'audit@bench.test', ['-w', '1'])
    wait_count(srv['count'], 'audit', base, msgs, 0, 30)
    time.sleep(1.5)
    st.terminate(); st.wait(timeout=30)
    port = str(srv['port'])
    events, in_data = [], set()
    before, after, dns = {}, {}, 0
    for line in open(trace, errors='replace'):
        m = EV.match(line)
        if not m:
            continue
        call, rest = m.group(5), m.group(6)
        if call == 'connect' and 'sin_port=htons(53)' in rest:   # a DNS query's socket
            dns += 1
            continue
        if call in SYNCS:
            fd = re.match(r'\d+<([^>]*)>', rest)
            key = '%s(%s)' % (call, generic(fd.group(1)) if fd else rest.split(')')[0])
            (before if in_data else after)[key] = (before if in_data else after).get(key, 0) + 1
            continue
        sock = re.match(r'\d+<TCP:\[127\.0\.0\.1:(\d+)->127\.0\.0\.1:(\d+)\]>, (?:\[\{iov_base=)?"(\d{3})', rest)
        if sock and sock.group(1) == port:
            if sock.group(3) == '354':
                in_data.add(sock.group(2))
            elif sock.group(3) == '250':
                in_data.discard(sock.group(2))
    return dict(part='audit', server=name, messages=msgs, dns_connects_per_msg=dns / msgs,
                before_250={k: v / msgs for k, v in before.items()},
                after_250={k: v / msgs for k, v in after.items()})


def audit():
    msgs = int(arg('--msgs', 5))
    servers = [s for s in arg('--servers', ','.join(SERVERS)).split(',') if s and SERVERS[s]['count']]
    out = ['', '## What each server syncs per message (strace -f of its process tree, %d messages one a second)' % msgs, '',
           '| server | before its 250 to the final dot | after it (delivery) | DNS sockets (connect to :53) |', '|---|---|---|---|']
    for name in servers:
        r = audit_one(name, msgs)
        with open('%s/allpeers-%s.jsonl' % (OUT, STAMP), 'a') as f:
            f.write(json.dumps(r) + '\n')
        fmt = lambda d: '; '.join('%.1f× %s' % (v, k) for k, v in sorted(d.items(), key=lambda kv: -kv[1])) or 'none'
        out.append('| %s | %s | %s | %.1f/msg |' % (name, fmt(r['before_250']), fmt(r['after_250']), r['dns_connects_per_msg']))
    append_md('\n'.join(out + ['']))


def udp():
    """The run's UDP datagrams by server, from its samples (each sample has one server busy)."""
    by = {}
    try:
        for line in open('%s/allpeers-%s.jsonl' % (OUT, STAMP)):
            r = json.loads(line)
            if r.get('udp'):
                by[r['server']] = by.get(r['server'], 0) + r['udp']
    except FileNotFoundError:
        pass
    print(', '.join('%s %d' % kv for kv in sorted(by.items())) or 'none during any sample')


if __name__ == '__main__':
    {'w1': w1, 'w8': w8, 'w9': w9, 'audit': audit, 'udp': udp}[sys.argv[1]]()
