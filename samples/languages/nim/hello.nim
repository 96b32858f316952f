# SPDX-License-Identifier: GPL-2.0
# Hello world in Nim for WASI.
echo "Hello, world!"
