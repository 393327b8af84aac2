#!/bin/sh
# Stands in for a compiler: says what it built and in which folder.
echo "built $1 in $(basename "$(pwd)")"
