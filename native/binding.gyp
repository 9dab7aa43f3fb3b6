# The flatnet addon: system calls only (TAP, AF_PACKET, UDP recvmmsg/sendmmsg with GSO/GRO,
# link ioctls, setns, uv_poll readiness). Built by npm's bundled node-gyp against the local
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
      ],
      'include_dirs': ["<!(node -p \"require('node-addon-api').include_dir\")"],
      'defines': ['NAPI_VERSION=8', 'NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS', '_GNU_SOURCE'],
      'cflags': ['-O2', '-Wall', '-Wextra', '-Wno-unused-parameter'],
      'cflags_cc': ['-O2', '-Wall', '-Wextra', '-Wno-unused-parameter', '-Wno-missing-field-initializers'],
    },
  ],
}
