# The flatnet addon: system calls only (TAP, AF_PACKET, UDP recvmmsg/sendmmsg with GSO/GRO,
# link ioctls, setns, uv_poll readiness, AF_XDP sockets, rtnetlink next-hop lookups). Built by npm's bundled node-gyp against the local
# Node headers (`npm run build:native`); nothing is downloaded.
{
  'targets': [
    {
      'target_name': 'flatnet',
      'sources': [
        'src/addon.cc',
        'src/errors.cc',
        'src/state.cc',
        'src/fd.cc',
        'src/tap.cc',
        'src/packet.cc',
        'src/udp.cc',
        'src/poll.cc',
        'src/link.cc',
        'src/netns.cc',
        'src/stats.cc',
        'src/xdp.cc',
        'src/nexthop.cc',
        'src/conntrack.cc',
      ],
      'include_dirs': ["<!(node -p \"require('node-addon-api').include_dir\")"],
      'defines': ['NAPI_VERSION=8', 'NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS', '_GNU_SOURCE'],
      'cflags': ['-O2', '-Wall', '-Wextra', '-Wno-unused-parameter'],
      'cflags_cc': ['-O2', '-Wall', '-Wextra', '-Wno-unused-parameter', '-Wno-missing-field-initializers'],
      # AF_XDP ports (src/xdp.cc): libbpf loads the XDP program built here from bpf/ with clang.
      'libraries': ['-lbpf'],
      'actions': [
        {
          'action_name': 'flatnet_xdp_bpf',
          'inputs': ['bpf/flatnet_xdp.c'],
          'outputs': ['<(PRODUCT_DIR)/flatnet_xdp.o'],
          'action': ['sh', '-c', 'clang -O2 -g -Wall -target bpf -I/usr/include/$$(gcc -dumpmachine) -c bpf/flatnet_xdp.c -o <(PRODUCT_DIR)/flatnet_xdp.o'],
        },
      ],
    },
  ],
}
