#!/usr/bin/env bash
# Prints this host's cgroup layout: v1, hybrid or v2.
v1=$(awk '$9 == "cgroup"' /proc/self/mountinfo | wc -l)
v2=$(awk '$9 == "cgroup2"' /proc/self/mountinfo | wc -l)
if [[ $v1 -gt 0 && $v2 -gt 0 ]]; then echo hybrid; elif [[ $v1 -gt 0 ]]; then echo v1; else echo v2; fi
