#!/usr/bin/env bash
# Regenerates the sample clips shipped with the simulated camera.
#
# Both clips: lavfi `testsrc` (moving colour pattern with a frame counter),
# 320x240, 30 fps, 120 frames (4 s), ~300 kbit/s, a keyframe every 30 frames
# exactly (fixed GOP, scene-cut keyframes disabled), no B-frames, single thread
# and bitexact so that a rerun gives the same bytes with the same ffmpeg build.
#
# Usage: devices/camera/media/clips/make-clips.sh   (needs ffmpeg with libvpx and libx264)
set -euo pipefail

cd "$(dirname "$0")"

SOURCE=(-f lavfi -i "testsrc=size=320x240:rate=30" -frames:v 120 -pix_fmt yuv420p)
COMMON=(-hide_banner -loglevel error -y)

# VP8 in IVF.
# - deadline realtime + error-resilient: what a camera would do for RTP streaming;
# - kf-min/max = 30: keyframes at 0, 30, 60, 90 and nowhere else;
# - auto-alt-ref 0 / lag 0: no invisible alt-ref frames, so 1 IVF frame = 1 shown picture.
ffmpeg "${COMMON[@]}" "${SOURCE[@]}" \
  -c:v libvpx -deadline realtime -cpu-used 4 -error-resilient 1 \
  -b:v 300k -minrate 300k -maxrate 300k -bufsize 300k \
  -g 30 -keyint_min 30 -auto-alt-ref 0 -lag-in-frames 0 \
  -threads 1 -fflags +bitexact -flags +bitexact \
  -f ivf testsrc.vp8.ivf

# H264 Annex-B elementary stream, constrained baseline, level 3.1.
# - profile baseline: x264 then sets constraint_set0+1, so the SPS reads 42c01f. With
#   constraint_set1 that is Constrained Baseline, the same profile and level as the usual
#   SDP profile-level-id=42e01f (RFC 6184 §8.1; libwebrtc parses both to the same profile);
# - scenecut=0 + keyint=min-keyint=30: IDR at 0, 30, 60, 90 only;
# - repeat-headers=1: SPS/PPS in front of every IDR, so a receiver can join at any keyframe;
# - filter_units removes SEI (type 6): x264 writes its version/settings banner there,
#   which is noise on the wire and makes the file depend on the x264 build.
ffmpeg "${COMMON[@]}" "${SOURCE[@]}" \
  -c:v libx264 -profile:v baseline -level:v 3.1 -bf 0 \
  -b:v 300k -maxrate 300k -bufsize 300k \
  -g 30 -keyint_min 30 -sc_threshold 0 \
  -x264-params "scenecut=0:repeat-headers=1:threads=1" \
  -fflags +bitexact -flags +bitexact \
  -bsf:v filter_units=remove_types=6 \
  -f h264 testsrc.h264
