import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCgroupMemberships, parseCgroupMounts, v1GroupsOf, v2GroupOf } from './cgroupDetection.js';

/** A host with both versions: v1 controllers, and cgroup2 without any (the test machine). */
const HYBRID_MOUNTINFO = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const HYBRID_CGROUP = `9:name=systemd:/
8:pids:/build
4:memory:/process_api/ac76
2:cpu,cpuacct:/
0::/
`;

test('a hybrid host: the worker’s group in each v1 hierarchy, cpu and cpuacct sharing one', () => {
  const mounts = parseCgroupMounts(HYBRID_MOUNTINFO);
  const memberships = parseCgroupMemberships(HYBRID_CGROUP);
  assert.deepEqual(v1GroupsOf(mounts, memberships), {
    groups: {
      memory: '/sys/fs/cgroup/memory/process_api/ac76',
      cpu: '/sys/fs/cgroup/cpu,cpuacct',
      cpuacct: '/sys/fs/cgroup/cpu,cpuacct',
      pids: '/sys/fs/cgroup/pids/build',
    },
  });
  assert.equal(v2GroupOf(mounts, memberships), '/sys/fs/cgroup/unified');
});

test('a systemd service on a cgroup v2 host', () => {
  const mounts = parseCgroupMounts(
    '24 30 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n',
  );
  const memberships = parseCgroupMemberships('0::/system.slice/granary-worker.service\n');
  assert.equal(v2GroupOf(mounts, memberships), '/sys/fs/cgroup/system.slice/granary-worker.service');
  assert.deepEqual(v1GroupsOf(mounts, memberships), { missing: 'memory' });
});

test('a container sharing the host’s cgroup namespace sees its own group at the mount point', () => {
  const mounts = parseCgroupMounts(
    '702 690 0:27 /docker/0f1e /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw\n',
  );
  assert.equal(v2GroupOf(mounts, parseCgroupMemberships('0::/docker/0f1e\n')), '/sys/fs/cgroup');
  assert.equal(v2GroupOf(mounts, parseCgroupMemberships('0::/other\n')), undefined, 'a group outside the mount');
});

test('escaped mount points are read back', () => {
  const mounts = parseCgroupMounts('41 31 0:38 / /srv/my\\040cgroups rw - cgroup2 cgroup2 rw\n');
  assert.equal(mounts[0]?.mountPoint, '/srv/my cgroups');
});
