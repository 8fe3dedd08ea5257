"""convscope.present"""
